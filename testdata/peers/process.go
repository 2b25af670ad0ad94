package peers

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// stopGrace is how long a peer gets to exit on SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// logTail is how much of a peer's log a failed test shows.
const logTail = 16 << 10

// process runs a peer program, one run at a time and restartable, with its
// stdout and stderr appended to one log file that a failed test shows.
type process struct {
	t       testing.TB
	name    string // for messages, e.g. "mosquitto"
	path    string
	args    []string
	logPath string
	// env, if set, is the program's whole environment (nil: the test's).
	env []string
	// onLine, if set, sees every line the program prints on stdout; it runs
	// on exec's copying goroutine and must not block.
	onLine func(line string)

	mu   sync.Mutex // guards cmd, done, err against Kill from another goroutine
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd.Wait's result, set before done closes
}

// newProcess registers the cleanups: stop the program, then show its log if
// the test failed (cleanups run last-registered first).
func newProcess(t testing.TB, name, logPath, path string, args ...string) *process {
	p := &process{t: t, name: name, path: path, args: args, logPath: logPath}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", name, logPath, p.log())
		}
	})
	t.Cleanup(p.stop)
	return p
}

// start launches the program; it is an error if it is already running.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is already running", p.name)
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "--- %s %s: %s %q\n", time.Now().Format(time.TimeOnly), p.name, p.path, p.args)
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout = logf
	if p.onLine != nil {
		cmd.Stdout = &lineWriter{w: logf, onLine: p.onLine}
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	// Owned by p: ends when the program exits, which stop guarantees.
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// exited returns a channel closed when the current run has ended, and the
// run's exit error once it has.
func (p *process) exited() (<-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done, p.err
}

func (p *process) running() bool {
	done, _ := p.exited()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// stop ends the current run with SIGTERM, or SIGKILL after stopGrace, and
// waits for it to exit. No-op when not running.
func (p *process) stop() { p.signal(sigTerm, stopGrace) }

// kill ends the current run with SIGKILL and waits for it to exit.
func (p *process) kill() { p.signal(os.Kill, 0) }

// notify sends sig to the running program without waiting for it.
func (p *process) notify(sig os.Signal) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	select {
	case <-done:
		return fmt.Errorf("%s is not running", p.name)
	default:
	}
	return cmd.Process.Signal(sig)
}

func (p *process) signal(sig os.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(sig)
	if sig == os.Kill {
		<-done
		return
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		p.t.Logf("%s did not exit within %v of %v: killing it", p.name, grace, sig)
		cmd.Process.Kill()
		<-done
	}
}

// waitReady polls ready until it is true; it fails the test if the program
// exits first or the timeout passes (and then stops it).
func (p *process) waitReady(timeout time.Duration, what string, ready func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ready() {
		done, _ := p.exited()
		select {
		case <-done:
			_, err := p.exited()
			p.t.Fatalf("%s exited (%v) before %s; log:\n%s", p.name, err, what, p.log())
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			p.t.Fatalf("%s: no %s within %v; log:\n%s", p.name, what, timeout, p.log())
		}
		time.Sleep(20 * time.Millisecond) // as testkit.WaitFor
	}
}

// log returns the end of the log file.
func (p *process) log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > logTail {
		b = append([]byte("...\n"), b[len(b)-logTail:]...)
	}
	return string(b)
}

// lineWriter copies a program's output to w and hands each complete line to
// onLine. Used by exec's one copying goroutine only.
type lineWriter struct {
	w      *os.File
	onLine func(string)
	buf    []byte
}

func (l *lineWriter) Write(b []byte) (int, error) {
	n, err := l.w.Write(b)
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.onLine(string(bytes.TrimRight(l.buf[:i], "\r")))
		l.buf = l.buf[i+1:]
	}
	return n, err
}
