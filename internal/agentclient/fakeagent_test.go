package agentclient_test

import (
	"net"
	"testing"

	"github.com/hashicorp/yamux"

	"github.com/provium/provium/internal/agent"
	"github.com/provium/provium/internal/proto"
)

// fakeAgent answers the first stream's hello with h, then hangs up.
func fakeAgent(t *testing.T, conn net.Conn, h proto.Hello) {
	synced, err := proto.AcceptSync(conn)
	if err != nil {
		t.Error(err)
		return
	}
	mux, err := yamux.Server(synced, agent.YamuxConfig())
	if err != nil {
		t.Error(err)
		return
	}
	defer mux.Close()
	st, err := mux.AcceptStream()
	if err != nil {
		return
	}
	defer st.Close()
	var req proto.Request
	if err := proto.ReadFrame(st, &req); err != nil {
		return
	}
	body, _ := proto.Marshal(h)
	_ = proto.WriteFrame(st, proto.Response{Body: body})
	var b [1]byte
	_, _ = st.Read(b[:]) // until the client hangs up
}
