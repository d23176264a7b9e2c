// The container side of exec, attach and run: a process joined to the container's namespaces.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// container is one running container, named by its main process.
type container struct {
	pid     int
	logFile string
}

// environ is the container's environment: its main process's initial environment.
func (c *container) environ() ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.pid))
	if err != nil {
		return nil, fmt.Errorf("container process %d: %w", c.pid, err)
	}
	var env []string
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if len(kv) > 0 {
			env = append(env, string(kv))
		}
	}
	return env, nil
}

// command runs argv in the container's network, mount and UTS namespaces, in its working
// directory, with its environment.
func (c *container) command(ctx context.Context, argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command given")
	}
	env, err := c.environ()
	if err != nil {
		return nil, err
	}
	args := append([]string{"-t", strconv.Itoa(c.pid), "-n", "-m", "-u", "--wd", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = env
	// The command leads its own process group (a new session with a TTY, Setpgid without one):
	// when the client goes away (ctx ends), the whole group goes, as on a terminal hang-up.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd, nil
}

// exitError turns a finished command's error into what ServeExec reports as an exit code.
func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 {
			code = 128 + 9
		}
		return utilexec.CodeExitError{Err: err, Code: code}
	}
	return err
}

// ExecInContainer implements remotecommandserver.Executor.
func (c *container) ExecInContainer(ctx context.Context, _ string, _ types.UID, _ string, argv []string,
	in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	cmd, err := c.command(ctx, argv)
	if err != nil {
		return err
	}
	if tty {
		return runTTY(cmd, in, out, resize)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if in != nil {
		cmd.Stdin = in
	}
	if out != nil {
		cmd.Stdout = out
	}
	if errOut != nil {
		cmd.Stderr = errOut
	}
	// Without this, Wait would block until stdin is closed by the client even after the
	// process exits; the kubelet (and runc) end the exec when the process ends.
	cmd.WaitDelay = time.Second
	return exitError(cmd.Run())
}

func runTTY(cmd *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	var size *pty.Winsize
	select { // the client sends its size first; take it if it is already there
	case s, ok := <-resize:
		if ok {
			size = &pty.Winsize{Cols: s.Width, Rows: s.Height}
		}
	case <-time.After(500 * time.Millisecond):
	}
	ptmx, err := pty.StartWithSize(cmd, size)
	if err != nil {
		return err
	}
	defer ptmx.Close()
	go func() {
		for s := range resize {
			_ = pty.Setsize(ptmx, &pty.Winsize{Cols: s.Width, Rows: s.Height})
		}
	}()
	if in != nil {
		go func() {
			_, _ = io.Copy(ptmx, in)
			// With a terminal, kubectl never half-closes stdin (^D travels as a byte): the end of
			// the stream is the client hanging up. Closing the terminal's master side makes the
			// kernel send SIGHUP to the session, as a real terminal hang-up does.
			_ = ptmx.Close()
		}()
	}
	copied := make(chan struct{})
	go func() {
		if out != nil {
			_, _ = io.Copy(out, ptmx) // ends with EIO once the process and its children are gone
		} else {
			_, _ = io.Copy(io.Discard, ptmx)
		}
		close(copied)
	}()
	werr := cmd.Wait()
	select {
	case <-copied:
	case <-time.After(2 * time.Second): // a background child still holds the terminal
	}
	return exitError(werr)
}

// AttachContainer implements remotecommandserver.Attacher: the container's output from now on
// (read from its log file, where the runtime writes its stdout and stderr) until it exits or the
// client leaves. Our containers' stdin is /dev/null, so input is read and dropped.
func (c *container) AttachContainer(ctx context.Context, _ string, _ types.UID, _ string,
	in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize) error {
	if c.logFile == "" {
		return errors.New("the container has no log file")
	}
	f, err := os.Open(c.logFile)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	if in != nil {
		go func() { _, _ = io.Copy(io.Discard, in) }()
	}
	buf := make([]byte, 32*1024)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		for {
			n, rerr := f.Read(buf)
			if n > 0 && out != nil {
				if _, werr := out.Write(buf[:n]); werr != nil {
					return nil
				}
			}
			if rerr != nil {
				break
			}
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", c.pid)); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// serveRun is the kubelet's POST /run: the command's combined output as the body.
func serveRun(w http.ResponseWriter, req *http.Request, c *container) {
	argv := strings.Fields(req.URL.Query().Get("cmd"))
	cmd, err := c.command(req.Context(), argv)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	output, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(output)
}
