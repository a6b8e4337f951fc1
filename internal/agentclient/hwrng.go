package agentclient

import (
	"context"

	"github.com/provium/provium/internal/proto"
)

// HWRNGSync lines the guest's /dev/hwrng up with the seed's virtio-rng
// stream, which the host has just restarted (proto.OpHWRNGSync).
func (c *Client) HWRNGSync(ctx context.Context, r proto.HWRNGSyncReq) (proto.HWRNGSyncResp, error) {
	var out proto.HWRNGSyncResp
	err := c.call(ctx, proto.OpHWRNGSync, r, &out)
	return out, err
}
