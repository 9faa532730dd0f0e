package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"messageapi/internal/servicetest"
)

// Server is a redis-server of one test's own, on 127.0.0.1, which the
// test can stop to see what its code does while Redis is down. The shared
// test Redis is never touched. It keeps nothing on disk.
type Server struct {
	tb   testing.TB
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartServer starts a redis-server and returns once it answers; it is
// stopped when the test ends. redis-server must be installed: without it
// the test fails.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	servicetest.Require(tb)
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redistest: a Redis server of a test's own needs redis-server (Debian package redis-server): %v", err)
	}
	s := &Server{tb: tb}
	dir := tb.TempDir()
	tb.Cleanup(s.Stop) // runs before the directory is removed
	var errs []error
	for range 10 { // another test may take the port between the check and the bind
		port, err := freeServerPort()
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		if err = s.start(port, dir); err == nil {
			return s
		}
		errs = append(errs, err)
	}
	tb.Fatalf("redistest: %v", errors.Join(errs...))
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the server's URL, database 0.
func (s *Server) URL() string { return "redis://" + s.addr + "/0" }

// Stop kills the server, as a crash would; its port then refuses
// connections. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// start runs redis-server on port and waits until this process, not a
// server of another test on the same port, answers.
func (s *Server) start(port int, dir string) error {
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"), "--save", "", "--appendonly", "no")
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	c := goredis.NewClient(&goredis.Options{Addr: s.addr, DialTimeout: time.Second, MaxRetries: -1, PoolSize: 1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := c.Info(ctx, "server").Result()
		if err == nil && parseInfo(info)["process_id"] == strconv.Itoa(cmd.Process.Pid) {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("redis-server on %s exited", s.addr)
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("redis-server on %s does not answer: %v", s.addr, err)
		case <-tick.C:
		}
	}
}

// freeServerPort returns a free port of 127.0.0.1 below 32768, out of the
// kernel's ephemeral range, where another test's client connection could
// take it between this check and the server's bind.
func freeServerPort() (int, error) {
	for range 1000 {
		if port := 10000 + rand.IntN(32768-10000); portFree(port) {
			return port, nil
		}
	}
	return 0, errors.New("no free port for a redis-server")
}
