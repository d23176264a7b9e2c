// Command kubelet-stream serves the kubelet's streaming endpoints for the local cluster's
// TypeScript kubelet: exec, attach, port-forward and run, with the code kubelet 1.33 itself
// serves them with (k8s.io/kubelet/pkg/cri/streaming: SPDY/3.1 and WebSocket, protocol
// versions v1..v5 of channel.k8s.io, portforward.k8s.io).
//
// It listens on a unix socket, plain HTTP. The TypeScript kubelet terminates TLS on the node's
// :10250 (client certificates from the cluster CA), resolves the pod and container and forwards
// the request here with the target in headers:
//
//	X-Ambient-Mesh-Pid    the container's main process (exec, attach, run): its namespaces
//	                      (net, mount, uts) and environment are the container's
//	X-Ambient-Mesh-Log    the container's log file (attach streams what it appends)
//	X-Ambient-Mesh-Netns  the pod's network namespace file (port-forward dials inside it)
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/kubelet/pkg/cri/streaming/portforward"
	remotecommandserver "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
)

const (
	headerPid   = "X-Ambient-Mesh-Pid"
	headerLog   = "X-Ambient-Mesh-Log"
	headerNetns = "X-Ambient-Mesh-Netns"
	// The kubelet's defaults (pkg/kubelet/server: streaming.DefaultConfig).
	idleTimeout           = 4 * time.Hour
	streamCreationTimeout = remotecommandconsts.DefaultStreamCreationTimeout
)

func main() {
	socket := flag.String("socket", "", "unix socket to listen on")
	flag.Parse()
	if *socket == "" {
		fmt.Fprintln(os.Stderr, "usage: kubelet-stream --socket <path>")
		os.Exit(2)
	}
	_ = os.Remove(*socket)
	l, err := net.Listen("unix", *socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubelet-stream: %v\n", err)
		os.Exit(1)
	}
	if err := os.Chmod(*socket, 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "kubelet-stream: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.HandlerFunc(serve), ReadHeaderTimeout: 30 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		_ = srv.Close()
	}()
	fmt.Printf("kubelet-stream listening on %s\n", *socket)
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "kubelet-stream: %v\n", err)
		os.Exit(1)
	}
	_ = os.Remove(*socket)
}

// watchedWriter hands out the hijacked connection wrapped so that its end (a failed read, or a
// close) cancels the request's context. After a hijack, net/http no longer cancels it when the
// client leaves; the streaming handlers pass req.Context() to the executor, so this is what ends
// an exec or attach whose client is gone.
type watchedWriter struct {
	http.ResponseWriter
	gone context.CancelFunc
}

func (w watchedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked")
	}
	conn, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	wc := &watchedConn{Conn: conn, gone: w.gone}
	// Keep what net/http already buffered, then read through the watch.
	buffered, err := rw.Reader.Peek(rw.Reader.Buffered())
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), wc))
	return wc, bufio.NewReadWriter(br, rw.Writer), nil
}

type watchedConn struct {
	net.Conn
	gone context.CancelFunc
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.gone()
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.gone()
	return c.Conn.Close()
}

// route is the first path segment and the rest: /exec/<ns>/<pod>[/<uid>]/<container>.
func serve(rw http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	w := watchedWriter{ResponseWriter: rw, gone: cancel}
	req := r.WithContext(ctx)
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch parts[0] {
	case "healthz":
		_, _ = w.Write([]byte("ok"))
	case "exec", "attach", "run":
		if len(parts) < 4 || len(parts) > 5 {
			http.Error(w, "expected /"+parts[0]+"/<namespace>/<pod>[/<uid>]/<container>", http.StatusBadRequest)
			return
		}
		target, err := containerTarget(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pod, container := parts[2], parts[len(parts)-1]
		switch parts[0] {
		case "run":
			serveRun(w, req, target)
		case "exec":
			opts, err := remotecommandserver.NewOptions(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			cmd := req.URL.Query()["command"]
			remotecommandserver.ServeExec(w, req, target, pod, "", container, cmd, opts,
				idleTimeout, streamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
		case "attach":
			opts, err := remotecommandserver.NewOptions(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			remotecommandserver.ServeAttach(w, req, target, pod, "", container, opts,
				idleTimeout, streamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
		}
	case "portForward":
		if len(parts) < 3 || len(parts) > 4 {
			http.Error(w, "expected /portForward/<namespace>/<pod>[/<uid>]", http.StatusBadRequest)
			return
		}
		netns := req.Header.Get(headerNetns)
		if netns == "" {
			http.Error(w, "missing "+headerNetns, http.StatusBadRequest)
			return
		}
		opts, err := portforward.NewV4Options(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		portforward.ServePortForward(w, req, podNetwork{netns: netns}, parts[2], "", opts,
			idleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	default:
		http.NotFound(w, req)
	}
}

func containerTarget(req *http.Request) (*container, error) {
	pid, err := strconv.Atoi(req.Header.Get(headerPid))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("missing or bad %s: the container is not running", headerPid)
	}
	return &container{pid: pid, logFile: req.Header.Get(headerLog)}, nil
}
