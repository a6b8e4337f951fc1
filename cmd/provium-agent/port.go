package main

import (
	"context"
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// listenPortMain is upstream's `provium-agent --port N`: a listener on vsock
// port N that serves agent sessions until the process is killed. Suites
// start it as a long-lived child (to open its pidfd, trace its exec, look
// at its token) and kill it. It never touches the virtio port, which the
// PID-1 agent owns, and leaves every signal at its default, so a kill ends
// it as it would end upstream's.
func listenPortMain(port uint32) int {
	fd, err := listenVsock(port)
	if errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.ENODEV) {
		// A guest without vsock: nothing could connect anyway. Stay, as
		// the listener would, until killed.
		logf("no vsock in this guest (%v); port %d is not served, waiting until killed", err, port)
		for {
			unix.Pause()
		}
	}
	if err != nil {
		logf("listen on vsock port %d: %v", port, err)
		return 1
	}
	logf("listening on vsock port %d", port)
	srv := newServer()
	for {
		nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
			continue
		}
		if err != nil {
			logf("accept on vsock port %d: %v", port, err)
			return 1
		}
		conn := os.NewFile(uintptr(nfd), "vsock:"+strconv.FormatUint(uint64(port), 10))
		go func() {
			if err := srv.ServeSession(context.Background(), conn); err != nil {
				logf("session on vsock port %d: %v", port, err)
			}
		}()
	}
}

// listenVsock binds a listening stream socket to port on any CID.
func listenVsock(port uint32) (int, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
