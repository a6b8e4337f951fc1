package agentclient

import (
	"context"

	"github.com/provium/provium/internal/proto"
)

// NetConfig applies the guest's whole network configuration and returns
// the guest interface name of each NIC, in request order.
func (c *Client) NetConfig(ctx context.Context, req proto.NetConfigReq) ([]string, error) {
	var out proto.NetConfigResp
	if err := c.call(ctx, proto.OpNetConfig, req, &out); err != nil {
		return nil, err
	}
	return out.Ifnames, nil
}
