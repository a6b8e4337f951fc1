// Package netsim is Provium's user-space L2 switch: one Switch per bridge,
// living in the Provium process. Each guest NIC is a QEMU `-netdev stream`
// that connects to a unix socket the switch listens on (frames carry a
// 4-byte big-endian length prefix); an in-process peer (the uplink) can be a
// port too.
//
// The switch learns MACs, floods broadcast, multicast and unknown unicast,
// and keeps per-port link state and counters. Every frame copy delivered to
// a destination goes through the rules of its (source, destination) pair in
// a fixed order (10-lua-api.md §13): partition and isolation, then loss
// (independent seeded draws for the whole-bridge and the pair rule), then
// bandwidth (the shared whole-bridge token bucket, then the pair's; a full
// queue drops), then latency (whole-bridge plus pair, summed). Capture taps
// write standard pcap.
//
// Nothing is host-global: a switch's sockets live in a directory of the run,
// so two bridges named alike (two files, two runs) never share a frame.
package netsim
