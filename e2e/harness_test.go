package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"messageapi/internal/servicetest"
)

// binaries builds cmd/api and cmd/worker once per test binary run.
var binaries = struct {
	once sync.Once
	dir  string
	err  error
}{}

// e2eVersion is the version the binaries are stamped with, as make build
// and the Dockerfile stamp theirs.
const e2eVersion = "0.0.0-e2e"

// raceBinaries builds the binaries with the race detector, as tests want;
// a benchmark that runs alone turns it off before its first build.
var raceBinaries = true

// buildBinaries returns the directory that holds freshly built api and
// worker binaries.
func buildBinaries(t testing.TB) string {
	t.Helper()
	servicetest.Builds(t)
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "messageapi-bin-")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		for _, name := range []string{"api", "worker"} {
			args := []string{"build", "-ldflags=-X messageapi/cmd/internal/daemon.Version=" + e2eVersion,
				"-o", filepath.Join(dir, name), "messageapi/cmd/" + name}
			if raceBinaries {
				args = append(args[:1], append([]string{"-race"}, args[1:]...)...)
			}
			cmd := exec.Command("go", args...)
			if out, err := cmd.CombinedOutput(); err != nil {
				binaries.err = &buildError{name: name, out: string(out), err: err}
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatalf("build binaries: %v", binaries.err)
	}
	return binaries.dir
}

type buildError struct {
	name, out string
	err       error
}

func (e *buildError) Error() string { return e.name + ": " + e.err.Error() + "\n" + e.out }

// proc is a running api or worker binary.
type proc struct {
	t     testing.TB
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	addrs map[string]string // server name -> address, from the "listening" log lines
	done  chan struct{}
	err   error // exit status, once done is closed
}

// startProc starts a built binary with the given environment and flags.
// Both pick free ports: tests pass -addr and -admin-addr 127.0.0.1:0 and
// learn the ports from the log.
func startProc(t testing.TB, name string, env []string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, exec.Command(filepath.Join(buildBinaries(t), name), args...), env)
}

// startProcWithFiles starts a built binary as startProc does, allowed at
// most files open files (the soft and the hard limit).
func startProcWithFiles(t testing.TB, name string, files int, env []string, args ...string) *proc {
	t.Helper()
	shell := fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, files)
	return startCmd(t, name, exec.Command("bash", append([]string{"-c", shell, filepath.Join(buildBinaries(t), name)}, args...)...), env)
}

func startCmd(t testing.TB, name string, cmd *exec.Cmd, env []string) *proc {
	t.Helper()
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	p := &proc{t: t, name: name, cmd: cmd, addrs: map[string]string{}, done: make(chan struct{})}
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var rec struct{ Msg, Server, Addr string }
			_ = json.Unmarshal([]byte(line), &rec)
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if rec.Msg == "listening" {
				p.addrs[rec.Server] = rec.Addr
			}
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		if stderr.Len() > 0 {
			p.mu.Lock()
			p.lines = append(p.lines, "stderr: "+stderr.String())
			p.mu.Unlock()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// addr waits for the address the process listens on for server.
func (p *proc) addr(server string) string {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		a := p.addrs[server]
		p.mu.Unlock()
		if a != "" {
			return a
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before listening (%v):\n%s", p.name, p.err, p.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s did not listen for %s:\n%s", p.name, server, p.output())
	return ""
}

// waitReady polls the admin /readyz until it answers 200.
func (p *proc) waitReady() {
	p.t.Helper()
	url := "http://" + p.addr("admin") + "/readyz"
	eventually(p.t, 60*time.Second, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, string(body)
	})
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		p.kill()
		return context.DeadlineExceeded
	}
}

// freeze stops the process (SIGSTOP): its connections stay open and
// nothing it holds is released by it. thaw resumes it.
func (p *proc) freeze() { _ = p.cmd.Process.Signal(syscall.SIGSTOP) }
func (p *proc) thaw()   { _ = p.cmd.Process.Signal(syscall.SIGCONT) }

// kill ends the process at once, like a crash.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a frozen process must be able to die
	_ = p.cmd.Process.Kill()
	<-p.done
}

// eventually polls cond until it holds or the deadline passes; it never
// sleeps a fixed time to wait for something.
func eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v; last state: %s", timeout, last)
		}
		time.Sleep(wait)
		wait = min(2*wait, 250*time.Millisecond)
	}
}
