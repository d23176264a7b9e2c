// The pod side of port-forward: a TCP connection opened inside the pod's network namespace.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
)

type podNetwork struct {
	netns string
}

// PortForward implements portforward.PortForwarder: it connects to localhost:<port> in the pod
// network namespace, as the kubelet's runtimes do, and copies both ways until either side ends.
func (p podNetwork) PortForward(ctx context.Context, _ string, _ types.UID, port int32, stream io.ReadWriteCloser) error {
	conn, err := dialInNetns(p.netns, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(stream, conn)
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// dialInNetns opens the socket while this goroutine's OS thread is inside the pod netns (a
// socket stays in the namespace it was created in), then moves the thread back. A thread that
// cannot move back is left locked, so the Go runtime retires it instead of reusing it.
func dialInNetns(netnsPath string, port int32) (net.Conn, error) {
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer self.Close()
	target, err := os.Open(netnsPath)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pod network namespace: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("entering the pod network namespace: %w", err)
	}
	conn, derr := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if derr != nil {
		conn, derr = net.DialTimeout("tcp6", fmt.Sprintf("[::1]:%d", port), 5*time.Second)
	}
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err == nil {
		runtime.UnlockOSThread()
	}
	if derr != nil {
		return nil, fmt.Errorf("failed to connect to localhost:%d inside the pod network namespace: %w", port, derr)
	}
	return conn, nil
}
