// Package scripts_test runs the set-up scripts (scripts/*.sh and
// loadtest/bench.sh) and checks what they do. Where a script would start a
// real server or needs a tool that CI lacks, a stand-in earlier in PATH (or
// in RUN_BIN_DIR) records how it was called and, where the script waits
// for a port, listens on it: the test binary itself serves as that
// listener (see TestMain). Tests that need PostgreSQL and Redis use the
// test settings, TEST_DATABASE_URL and TEST_REDIS_URL, like every other
// test, and only read there, or write under a schema and key prefix of
// their own.
package scripts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"messageapi/internal/servicetest"
)

// The environment variables that turn the test binary into a stand-in
// server: it listens on SCRIPTS_TEST_LISTEN, writes its pid to
// SCRIPTS_TEST_PIDFILE and runs until SIGTERM or SIGINT (two minutes at
// most, so that nothing outlives a test that failed to stop it).
const (
	listenEnv  = "SCRIPTS_TEST_LISTEN"
	pidfileEnv = "SCRIPTS_TEST_PIDFILE"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(listenEnv); addr != "" {
		os.Exit(standIn(addr, os.Getenv(pidfileEnv)))
	}
	os.Exit(m.Run())
}

func standIn(addr, pidfile string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stand-in:", err)
		return 1
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	if pidfile != "" {
		tmp := pidfile + ".tmp"
		if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "stand-in:", err)
			return 1
		}
		if err := os.Rename(tmp, pidfile); err != nil {
			fmt.Fprintln(os.Stderr, "stand-in:", err)
			return 1
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case <-time.After(2 * time.Minute):
	}
	_ = ln.Close()
	return 0
}

// repoRoot is the project's root: go test runs in scripts/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// scriptVars are the variables the scripts read; every test sets the ones
// it needs and no other, whatever the environment of go test holds.
var scriptVars = []string{
	"DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "TEST_REDIS_URL",
	"ADMIN_DATABASE_URL", "CI", "SERVICES_STATE_DIR", "RUN_BIN_DIR",
	"ADDR", "ADMIN_ADDR", "WORKER_ADMIN_ADDR", "REDIS_PREFIX", "TMPDIR",
	"POSTGRES_BIND", "POSTGRES_PORT", "REDIS_BIND", "REDIS_PORT",
	listenEnv, pidfileEnv,
}

// env is the environment of go test without scriptVars, plus vars
// ("KEY=value"); a PATH among them replaces the inherited one.
func env(vars ...string) []string {
	drop := map[string]bool{}
	for _, k := range scriptVars {
		drop[k] = true
	}
	for _, kv := range vars {
		drop[strings.SplitN(kv, "=", 2)[0]] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		if !drop[strings.SplitN(kv, "=", 2)[0]] {
			out = append(out, kv)
		}
	}
	return append(out, vars...)
}

// pathWith is a PATH with dirs first, then the inherited one.
func pathWith(dirs ...string) string {
	return "PATH=" + strings.Join(append(dirs, os.Getenv("PATH")), string(os.PathListSeparator))
}

// The test settings, as the other tests of the project read them.
func testDatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://message-api:message-api@localhost:5432/message-api-test?sslmode=disable"
}

func testRedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://localhost:6379/15"
}

type result struct {
	out  string // standard output and error
	code int
}

// command returns a command for a script in its own process group, so
// that a test can end everything it started.
func command(t *testing.T, env []string, name string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Dir = repoRoot(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

// run runs a script to its end, within timeout.
func run(t *testing.T, timeout time.Duration, env []string, name string, args ...string) result {
	t.Helper()
	cmd, out := command(t, env, name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return result{out: out.String(), code: exitCode(t, err)}
	case <-time.After(timeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		t.Fatalf("%s %s did not finish within %s; output:\n%s", name, strings.Join(args, " "), timeout, out.String())
		return result{}
	}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		t.Fatal(err)
		return -1
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// writeExec writes an executable file.
func writeExec(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// freePort is a port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// listening is a port on 127.0.0.1 on which the test accepts connections
// until it ends: a server that is already running.
func listening(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// alive reports whether a process runs (a zombie does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// waitDead waits up to five seconds for a process to end.
func waitDead(t *testing.T, what string, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	t.Errorf("%s (pid %d) still runs", what, pid)
}

// killPidfiles ends, when the test ends, the processes whose pids the
// files hold (the stand-ins a test started through a script).
func killPidfiles(t *testing.T, files ...string) {
	t.Cleanup(func() {
		for _, f := range files {
			if pid, err := readPid(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

func readPid(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
}

// standInBinary is the test binary, to run as a stand-in server.
func standInBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// ---------------------------------------------------------------------------
// scripts/run.sh

// fakeProgram is a shell script standing in for the api or the worker.
// With fail 0 it records its pid once it is up, runs until SIGTERM or
// SIGINT and then exits 0, as the real programs do, recording that it was
// stopped. Otherwise it waits until the other program is up (other) and
// then fails with status fail, as a program that cannot bind its port.
func fakeProgram(dir, name, other string, fail int) string {
	if fail != 0 {
		return fmt.Sprintf(`#!/bin/sh
echo $$ >%[1]s/%[2]s.pid
while [ ! -s %[1]s/%[3]s.pid ]; do sleep 0.01; done
echo "%[2]s: listen on 127.0.0.1:8080 for %[2]s: bind: address already in use" >&2
exit %[4]d
`, dir, name, other, fail)
	}
	return fmt.Sprintf(`#!/bin/sh
trap 'echo stopped >%[1]s/%[2]s.stopped; kill $sleeper 2>/dev/null; exit 0' TERM INT
sleep 60 >/dev/null 2>&1 &
sleeper=$!
echo $$ >%[1]s/%[2]s.pid
wait $sleeper
`, dir, name)
}

func TestRunFailsWhenEitherProgramFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		apiFail, worker int
		failed, other   string
	}{
		{name: "api cannot start", apiFail: 1, failed: "api", other: "worker"},
		{name: "worker fails", worker: 3, failed: "worker", other: "api"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin := t.TempDir()
			writeExec(t, filepath.Join(bin, "api"), fakeProgram(bin, "api", "worker", tc.apiFail))
			writeExec(t, filepath.Join(bin, "worker"), fakeProgram(bin, "worker", "api", tc.worker))

			r := run(t, 30*time.Second, env("RUN_BIN_DIR="+bin), "scripts/run.sh")

			want := max(tc.apiFail, tc.worker)
			if r.code != want {
				t.Errorf("run.sh exited %d, want %d (the failed program's status); output:\n%s", r.code, want, r.out)
			}
			if msg := fmt.Sprintf("the %s exited with status %d", tc.failed, want); !strings.Contains(r.out, msg) {
				t.Errorf("output does not say %q:\n%s", msg, r.out)
			}
			if _, err := os.Stat(filepath.Join(bin, tc.other+".stopped")); err != nil {
				t.Errorf("the %s was not stopped with a signal: %v", tc.other, err)
			}
			for _, name := range []string{"api", "worker"} {
				pid, err := readPid(filepath.Join(bin, name+".pid"))
				if err != nil {
					t.Fatalf("the %s did not start: %v", name, err)
				}
				waitDead(t, name, pid)
			}
		})
	}
}

func TestRunStopsCleanlyOnSignal(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			bin := t.TempDir()
			writeExec(t, filepath.Join(bin, "api"), fakeProgram(bin, "api", "worker", 0))
			writeExec(t, filepath.Join(bin, "worker"), fakeProgram(bin, "worker", "api", 0))
			cmd, out := command(t, env("RUN_BIN_DIR="+bin), "scripts/run.sh")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pgid := cmd.Process.Pid
			t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()

			pids := map[string]int{}
			for deadline := time.Now().Add(10 * time.Second); len(pids) < 2; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the programs did not start; output:\n%s", out.String())
				}
				for _, name := range []string{"api", "worker"} {
					if pid, err := readPid(filepath.Join(bin, name+".pid")); err == nil {
						pids[name] = pid
					}
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if code := exitCode(t, err); code != 0 {
					t.Errorf("run.sh exited %d after %v, want 0; output:\n%s", code, sig, out.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("run.sh did not stop after %v; output:\n%s", sig, out.String())
			}
			for name, pid := range pids {
				if _, err := os.Stat(filepath.Join(bin, name+".stopped")); err != nil {
					t.Errorf("the %s was not stopped with a signal: %v", name, err)
				}
				waitDead(t, name, pid)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// scripts/services.sh against the servers of the test settings

// psqlRecorder is a directory with a psql that records its arguments in
// log and then runs the real one.
func psqlRecorder(t *testing.T) (dir, log string) {
	t.Helper()
	real, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql is needed to check the role and database (apt-get install -y postgresql-client)")
	}
	dir = t.TempDir()
	log = filepath.Join(dir, "psql.log")
	writeExec(t, filepath.Join(dir, "psql"), fmt.Sprintf("#!/bin/sh\necho \"$*\" >>%s\nexec %s \"$@\"\n", log, real))
	return dir, log
}

func TestServicesUpChecksOnlyTheSettingsItIsFor(t *testing.T) {
	t.Parallel()
	servicetest.Require(t) // services.sh checks the real servers of the other settings
	dead := freePort(t)
	deadDB := fmt.Sprintf("postgres://message-api:message-api@127.0.0.1:%d/message-api-test?sslmode=disable", dead)
	deadRedis := fmt.Sprintf("redis://127.0.0.1:%d/15", dead)
	for _, tc := range []struct {
		target string
		vars   []string
		live   string
	}{
		// make run needs only DATABASE_URL and REDIS_URL; the test
		// database stands in for the service's, since it is there wherever
		// the tests run.
		{"run", []string{"DATABASE_URL=" + testDatabaseURL(), "REDIS_URL=" + testRedisURL(),
			"TEST_DATABASE_URL=" + deadDB, "TEST_REDIS_URL=" + deadRedis}, "DATABASE_URL"},
		{"test", []string{"TEST_DATABASE_URL=" + testDatabaseURL(), "TEST_REDIS_URL=" + testRedisURL(),
			"DATABASE_URL=" + deadDB, "REDIS_URL=" + deadRedis}, "TEST_DATABASE_URL"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			t.Parallel()
			psqlDir, psqlLog := psqlRecorder(t)
			state := filepath.Join(t.TempDir(), "state")
			// CI=true: a server missing here is a failure, never started.
			vars := append([]string{"CI=true", "SERVICES_STATE_DIR=" + state, pathWith(psqlDir)}, tc.vars...)

			r := run(t, 60*time.Second, env(vars...), "scripts/services.sh", "up", tc.target)

			if r.code != 0 {
				t.Fatalf("services.sh up %s exited %d; output:\n%s", tc.target, r.code, r.out)
			}
			deadAddr := fmt.Sprintf("127.0.0.1:%d", dead)
			if strings.Contains(r.out, deadAddr) {
				t.Errorf("up %s looked at the other settings (%s):\n%s", tc.target, deadAddr, r.out)
			}
			calls := readFile(t, psqlLog)
			if strings.Contains(calls, deadAddr) {
				t.Errorf("up %s ran psql on the other settings' database:\n%s", tc.target, calls)
			}
			if !strings.Contains(calls, testDatabaseURL()) {
				t.Errorf("up %s did not check the database of %s:\n%s", tc.target, tc.live, calls)
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("up %s made its state directory, as if it started something: %v", tc.target, err)
			}
		})
	}
}

func TestServicesInCIFailsOnAnUnreachableServer(t *testing.T) {
	t.Parallel()
	servicetest.Require(t) // services.sh checks the real servers of the other settings
	dead := freePort(t)
	for _, tc := range []struct {
		name, target, variable string
		vars                   []string
	}{
		{"run postgres", "run", "DATABASE_URL", []string{
			fmt.Sprintf("DATABASE_URL=postgres://message-api:message-api@127.0.0.1:%d/message-api?sslmode=disable", dead),
			"REDIS_URL=" + testRedisURL()}},
		{"run redis", "run", "REDIS_URL", []string{
			"DATABASE_URL=" + testDatabaseURL(),
			fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", dead)}},
		{"test postgres", "test", "TEST_DATABASE_URL", []string{
			fmt.Sprintf("TEST_DATABASE_URL=postgres://message-api:message-api@127.0.0.1:%d/message-api-test?sslmode=disable", dead),
			"TEST_REDIS_URL=" + testRedisURL()}},
		{"test redis", "test", "TEST_REDIS_URL", []string{
			"TEST_DATABASE_URL=" + testDatabaseURL(),
			fmt.Sprintf("TEST_REDIS_URL=redis://127.0.0.1:%d/15", dead)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			state := filepath.Join(t.TempDir(), "state")
			vars := append([]string{"CI=true", "SERVICES_STATE_DIR=" + state}, tc.vars...)

			r := run(t, 60*time.Second, env(vars...), "scripts/services.sh", "up", tc.target)

			if r.code == 0 {
				t.Fatalf("services.sh up %s succeeded with %s unreachable; output:\n%s", tc.target, tc.variable, r.out)
			}
			want := fmt.Sprintf("of %s is not reachable on 127.0.0.1:%d", tc.variable, dead)
			if !strings.Contains(r.out, want) {
				t.Errorf("output does not say %q:\n%s", want, r.out)
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("with CI=true up %s made its state directory, as if it started something: %v", tc.target, err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// scripts/services.sh starting servers from the machine's own binaries

// fakeServers writes stand-ins into bin for what services.sh runs to start
// servers from the machine's binaries: a docker with no engine, a psql that
// succeeds or fails with psqlStatus, and initdb, pg_ctl and redis-server
// whose servers are stand-in listeners (the program helper). Each records
// its calls, with the uid it ran as, in log.
func fakeServers(t *testing.T, bin, log, helper string, psqlStatus int) {
	t.Helper()
	writeExec(t, filepath.Join(bin, "docker"), "#!/bin/sh\nexit 1\n")
	writeExec(t, filepath.Join(bin, "psql"), fmt.Sprintf("#!/bin/sh\necho \"psql $*\" >>%s\nexit %d\n", log, psqlStatus))
	writeExec(t, filepath.Join(bin, "initdb"), fmt.Sprintf(`#!/bin/sh
while [ $# -gt 0 ]; do case $1 in -D) data=$2; shift ;; esac; shift; done
echo "initdb uid=$(id -u) data=$data" >>%s
echo 15 >"$data/PG_VERSION"
`, log))
	writeExec(t, filepath.Join(bin, "pg_ctl"), fmt.Sprintf(`#!/bin/sh
while [ $# -gt 0 ]; do
	case $1 in
	-D) data=$2; shift ;;
	-o) opts=$2; shift ;;
	-l|-m) shift ;;
	-*) ;;
	*) action=$1 ;;
	esac
	shift
done
echo "pg_ctl $action uid=$(id -u) data=$data" >>%[1]s
case $action in
start)
	port=$(echo "$opts" | sed -n 's/.*-p \([0-9]*\).*/\1/p')
	host=$(echo "$opts" | sed -n 's/.*listen_addresses=\([^ ]*\).*/\1/p')
	%[2]s=$host:$port %[3]s=$data/postmaster.pid %[4]s >/dev/null 2>&1 </dev/null &
	for i in $(seq 100); do [ -s "$data/postmaster.pid" ] && exit 0; sleep 0.05; done
	exit 1 ;;
stop)
	kill "$(head -n 1 "$data/postmaster.pid")"
	rm -f "$data/postmaster.pid" ;;
esac
`, log, listenEnv, pidfileEnv, helper))
	writeExec(t, filepath.Join(bin, "redis-server"), fmt.Sprintf(`#!/bin/sh
while [ $# -gt 0 ]; do
	case $1 in
	--port) port=$2; shift ;;
	--bind) bind=$2; shift ;;
	--pidfile) pidfile=$2; shift ;;
	--*) shift ;;
	esac
	shift
done
echo "redis-server uid=$(id -u) port=$port" >>%[1]s
%[2]s=${bind%%%% *}:$port %[3]s=$pidfile %[4]s >/dev/null 2>&1 </dev/null &
`, log, listenEnv, pidfileEnv, helper))
}

func TestServicesSaysWhatItStartedWhenSetUpFails(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	fakeServers(t, bin, filepath.Join(bin, "calls.log"), standInBinary(t), 2) // psql fails
	state := filepath.Join(t.TempDir(), "state")
	redisPort := freePort(t)
	pidfile := filepath.Join(state, fmt.Sprintf("redis-%d", redisPort), "redis.pid")
	killPidfiles(t, pidfile)
	vars := env("CI=", "SERVICES_STATE_DIR="+state, pathWith(bin),
		fmt.Sprintf("DATABASE_URL=postgres://message-api:message-api@127.0.0.1:%d/message-api?sslmode=disable", listening(t)),
		fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", redisPort))

	r := run(t, 60*time.Second, vars, "scripts/services.sh", "up", "run")
	if r.code == 0 {
		t.Fatalf("services.sh up run succeeded though psql fails; output:\n%s", r.out)
	}
	for _, want := range []string{
		"cannot connect to database message-api of DATABASE_URL",
		"set-up failed after starting:",
		fmt.Sprintf("Redis on 127.0.0.1:%d", redisPort),
		"stop them with: SERVICES_STATE_DIR=" + state + " scripts/services.sh down",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output does not say %q:\n%s", want, r.out)
		}
	}
	pid, err := readPid(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, 60*time.Second, vars, "scripts/services.sh", "down"); r.code != 0 {
		t.Fatalf("services.sh down exited %d; output:\n%s", r.code, r.out)
	}
	waitDead(t, "Redis", pid)
}

// TestServicesLocalPostgresDataIsReachableAsRoot runs services.sh from a
// copy of the project inside a directory only root may enter, as with a
// clone under /root: the PostgreSQL server runs as the postgres user, so
// its data must be somewhere that user can reach. initdb, pg_ctl and
// redis-server are stand-ins, run as the real services.sh runs them
// (initdb and pg_ctl through runuser, as postgres).
func TestServicesLocalPostgresDataIsReachableAsRoot(t *testing.T) {
	t.Parallel()
	// The case exists only as root, where the server runs as the postgres
	// user. A developer's machine may lack it; CI must not.
	pg, lookupErr := user.Lookup("postgres")
	_, runuserErr := exec.LookPath("runuser")
	for _, need := range []struct {
		ok  bool
		why string
	}{
		{os.Getuid() == 0, "this case needs root"},
		{lookupErr == nil, "this case needs a postgres user"},
		{runuserErr == nil, "this case needs runuser"},
	} {
		switch {
		case need.ok:
		case os.Getenv("CI") == "true":
			t.Fatal(need.why + ", and CI must run it")
		default:
			t.Skip(need.why)
		}
	}

	// Directories that the postgres user can reach (t.TempDir's are
	// private), for the stand-ins, their records and TMPDIR.
	public, err := os.MkdirTemp("", "scripts-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(public) })
	bin, calls, tmp := filepath.Join(public, "bin"), filepath.Join(public, "calls"), filepath.Join(public, "tmp")
	for _, d := range []string{bin, calls, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{public, calls} {
		if err := os.Chmod(d, map[string]os.FileMode{public: 0o755, calls: 0o777}[d]); err != nil {
			t.Fatal(err)
		}
	}
	helper := filepath.Join(bin, "stand-in")
	copyFile(t, standInBinary(t), helper, 0o755)
	log := filepath.Join(calls, "log")
	fakeServers(t, bin, log, helper, 0)

	// The project, copied into a directory private to root.
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	checkout := filepath.Join(private, "checkout")
	if err := os.MkdirAll(filepath.Join(checkout, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"services.sh", "lib.sh"} {
		copyFile(t, filepath.Join(repoRoot(t), "scripts", f), filepath.Join(checkout, "scripts", f), 0o755)
	}
	services := filepath.Join(checkout, "scripts", "services.sh")
	pgPort, redisPort := freePort(t), freePort(t)
	state := filepath.Join(checkout, ".local")
	killPidfiles(t, filepath.Join(state, fmt.Sprintf("redis-%d", redisPort), "redis.pid"))
	urls := []string{
		fmt.Sprintf("DATABASE_URL=postgres://message-api:message-api@127.0.0.1:%d/message-api?sslmode=disable", pgPort),
		fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", redisPort),
	}

	t.Run("TMPDIR out of reach", func(t *testing.T) {
		hidden := filepath.Join(private, "tmp")
		if err := os.Mkdir(hidden, 0o755); err != nil {
			t.Fatal(err)
		}
		r := run(t, 60*time.Second, env(append([]string{"CI=", "TMPDIR=" + hidden, pathWith(bin)}, urls...)...), services, "up", "run")
		if r.code == 0 {
			t.Fatalf("up run succeeded with TMPDIR where the postgres user cannot go; output:\n%s", r.out)
		}
		if want := "the postgres user cannot reach " + hidden; !strings.Contains(r.out, want) || !strings.Contains(r.out, "TMPDIR") {
			t.Errorf("output does not say %q and how to fix it:\n%s", want, r.out)
		}
		if left, _ := os.ReadDir(hidden); len(left) > 0 {
			t.Errorf("left %v in %s", left, hidden)
		}
	})

	vars := env(append([]string{"CI=", "TMPDIR=" + tmp, pathWith(bin)}, urls...)...)
	r := run(t, 60*time.Second, vars, services, "up", "run")
	record := filepath.Join(state, fmt.Sprintf("postgres-%d.data", pgPort))
	if b, err := os.ReadFile(record); err == nil {
		data := strings.TrimSpace(string(b))
		killPidfiles(t, filepath.Join(data, "postmaster.pid"))
	}
	if r.code != 0 {
		t.Fatalf("services.sh up run exited %d; output:\n%s", r.code, r.out)
	}
	data := strings.TrimSpace(readFile(t, record))
	if !strings.HasPrefix(data, tmp+"/") {
		t.Errorf("the data directory %s is not under TMPDIR %s", data, tmp)
	}
	info, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if st := info.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != pg.Uid || info.Mode().Perm() != 0o700 {
		t.Errorf("the data directory is owned by uid %d with mode %v, want the postgres user's (%s) and 0700", st.Uid, info.Mode().Perm(), pg.Uid)
	}
	if out, err := exec.Command("runuser", "-u", "postgres", "--", "test", "-w", data, "-a", "-x", data).CombinedOutput(); err != nil {
		t.Errorf("the postgres user cannot use %s: %v %s", data, err, out)
	}
	got := readFile(t, log)
	if want := fmt.Sprintf("initdb uid=%s data=%s\n", pg.Uid, data); !strings.Contains(got, want) {
		t.Errorf("no %q among the calls:\n%s", want, got)
	}
	for _, port := range []int{pgPort, redisPort} {
		if !reachable(fmt.Sprintf("127.0.0.1:%d", port)) {
			t.Errorf("nothing listens on port %d after up", port)
		}
	}
	pgPid, err := readPid(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	redisPid, err := readPid(filepath.Join(state, fmt.Sprintf("redis-%d", redisPort), "redis.pid"))
	if err != nil {
		t.Fatal(err)
	}

	r = run(t, 60*time.Second, vars, services, "down")
	if r.code != 0 {
		t.Fatalf("services.sh down exited %d; output:\n%s", r.code, r.out)
	}
	waitDead(t, "PostgreSQL", pgPid)
	waitDead(t, "Redis", redisPid)
	if got := readFile(t, log); !strings.Contains(got, fmt.Sprintf("pg_ctl stop uid=%s data=%s\n", pg.Uid, data)) {
		t.Errorf("down did not stop PostgreSQL in %s with pg_ctl as postgres:\n%s", data, got)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// scripts/services.sh with Docker Compose

// fakeCompose is a directory with a docker that reports a running engine
// and records every compose command with the variables the compose file
// reads; "compose up -d --wait SERVICE" starts a stand-in listening where
// the service would be published, and "compose stop" stops the stand-ins.
// It also holds a psql that records its arguments and succeeds, or fails
// with psqlStatus.
func fakeCompose(t *testing.T, psqlStatus int) (bin, log string) {
	t.Helper()
	bin = t.TempDir()
	log = filepath.Join(bin, "calls.log")
	writeExec(t, filepath.Join(bin, "docker"), fmt.Sprintf(`#!/usr/bin/env bash
bin=%[1]s
case $1 in
info) exit 0 ;;
compose) shift ;;
*) echo "fake docker: $*" >&2; exit 1 ;;
esac
echo "compose $* POSTGRES_BIND=${POSTGRES_BIND-} POSTGRES_PORT=${POSTGRES_PORT-} REDIS_BIND=${REDIS_BIND-} REDIS_PORT=${REDIS_PORT-}" >>%[2]s
case $1 in
up)
	svc=${!#}
	case $svc in
	postgres) addr=$POSTGRES_BIND:$POSTGRES_PORT ;;
	redis) addr=$REDIS_BIND:$REDIS_PORT ;;
	esac
	%[3]s=$addr %[4]s=$bin/$svc.pid %[5]s >/dev/null 2>&1 </dev/null &
	;;
stop)
	shift
	for svc; do kill "$(cat "$bin/$svc.pid")"; done
	;;
esac
`, bin, log, listenEnv, pidfileEnv, standInBinary(t)))
	writeExec(t, filepath.Join(bin, "psql"), fmt.Sprintf("#!/bin/sh\necho \"psql $*\" >>%s\nexit %d\n", log, psqlStatus))
	killPidfiles(t, filepath.Join(bin, "postgres.pid"), filepath.Join(bin, "redis.pid"))
	return bin, log
}

func TestServicesComposePublishesTheConfiguredPortsAndDownStopsThem(t *testing.T) {
	t.Parallel()
	compose := readFile(t, filepath.Join(repoRoot(t), "docker-compose.yml"))
	for _, tc := range []struct {
		name        string
		redisUp     bool // Redis already runs: only PostgreSQL is started
		wantStarted []string
	}{
		{"both", false, []string{"postgres", "redis"}},
		{"postgres only", true, []string{"postgres"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin, log := fakeCompose(t, 0)
			state := filepath.Join(t.TempDir(), "state")
			pgPort, redisPort := freePort(t), freePort(t)
			if tc.redisUp {
				redisPort = listening(t)
			}
			vars := env("CI=", "SERVICES_STATE_DIR="+state, pathWith(bin),
				fmt.Sprintf("DATABASE_URL=postgres://message-api:message-api@localhost:%d/message-api?sslmode=disable", pgPort),
				fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", redisPort),
				// The test settings are not for make run: never looked at.
				"TEST_DATABASE_URL=postgres://nobody@192.0.2.1:1/none", "TEST_REDIS_URL=redis://192.0.2.1:1/0")

			r := run(t, 60*time.Second, vars, "scripts/services.sh", "up", "run")
			if r.code != 0 {
				t.Fatalf("services.sh up run exited %d; output:\n%s", r.code, r.out)
			}
			calls := readFile(t, log)
			wantUp := map[string]string{
				"postgres": fmt.Sprintf("compose up -d --wait postgres POSTGRES_BIND=127.0.0.1 POSTGRES_PORT=%d ", pgPort),
				"redis":    fmt.Sprintf("compose up -d --wait redis POSTGRES_BIND=127.0.0.1 POSTGRES_PORT=%d REDIS_BIND=127.0.0.1 REDIS_PORT=%d", pgPort, redisPort),
			}
			var marker []string
			for _, svc := range tc.wantStarted {
				if !strings.Contains(calls, wantUp[svc]) {
					t.Errorf("no %q among the docker calls:\n%s", wantUp[svc], calls)
				}
				port := map[string]int{"postgres": pgPort, "redis": redisPort}[svc]
				marker = append(marker, fmt.Sprintf("%s 127.0.0.1 %d", svc, port))
				if !reachable(fmt.Sprintf("127.0.0.1:%d", port)) {
					t.Errorf("%s is not published on its port %d", svc, port)
				}
			}
			if tc.redisUp && strings.Contains(calls, "--wait redis") {
				t.Errorf("started Redis, which was running:\n%s", calls)
			}
			if got := strings.TrimSpace(readFile(t, filepath.Join(state, "compose"))); got != strings.Join(marker, "\n") {
				t.Errorf("the record of what compose started is %q, want %q", got, strings.Join(marker, "\n"))
			}
			// The compose file publishes the ports through the variables
			// that the script sets.
			for _, svc := range tc.wantStarted {
				v := strings.ToUpper(svc)
				if !strings.Contains(compose, fmt.Sprintf(`"${%s_BIND:-127.0.0.1}:${%s_PORT:-`, v, v)) {
					t.Errorf("docker-compose.yml does not publish %s on ${%s_BIND}:${%s_PORT}", svc, v, v)
				}
			}

			pids := map[string]int{}
			for _, svc := range tc.wantStarted {
				pid, err := readPid(filepath.Join(bin, svc+".pid"))
				if err != nil {
					t.Fatal(err)
				}
				pids[svc] = pid
			}
			r = run(t, 60*time.Second, vars, "scripts/services.sh", "down")
			if r.code != 0 {
				t.Fatalf("services.sh down exited %d; output:\n%s", r.code, r.out)
			}
			calls = readFile(t, log)
			if want := "compose stop " + strings.Join(tc.wantStarted, " ") + " "; !strings.Contains(calls, want) {
				t.Errorf("down did not run %q:\n%s", want, calls)
			}
			if _, err := os.Stat(filepath.Join(state, "compose")); !os.IsNotExist(err) {
				t.Errorf("down left the record of compose services: %v", err)
			}
			for svc, pid := range pids {
				waitDead(t, svc, pid)
			}
			if tc.redisUp && !reachable(fmt.Sprintf("127.0.0.1:%d", redisPort)) {
				t.Error("down stopped the Redis it had not started")
			}
		})
	}
}

// ---------------------------------------------------------------------------
// docker-compose.yml

// TestComposePortsAreConfigurable checks that every published port of
// docker-compose.yml is set through a variable with the programs' default,
// and that the worker's admin port has no fixed default, so that
// `docker compose up --scale worker=3` does not give three workers one
// host port.
func TestComposePortsAreConfigurable(t *testing.T) {
	t.Parallel()
	compose := readFile(t, filepath.Join(repoRoot(t), "docker-compose.yml"))
	want := map[string]string{
		"postgres": `"${POSTGRES_BIND:-127.0.0.1}:${POSTGRES_PORT:-5432}:5432"`,
		"redis":    `"${REDIS_BIND:-127.0.0.1}:${REDIS_PORT:-6379}:6379"`,
		"api": `"${API_BIND:-127.0.0.1}:${API_PORT:-8080}:8080"` + "\n" +
			`"${API_BIND:-127.0.0.1}:${API_ADMIN_PORT:-6060}:6060"`,
		"worker": `"${API_BIND:-127.0.0.1}:${WORKER_ADMIN_PORT:-}:6061"`,
		"api-cluster": `"${API_BIND:-127.0.0.1}:${API_CLUSTER_PORT:-8081}:8080"` + "\n" +
			`"${API_BIND:-127.0.0.1}:${API_CLUSTER_ADMIN_PORT:-6062}:6060"`,
	}
	got := composePorts(compose)
	for svc, w := range want {
		if strings.Join(got[svc], "\n") != w {
			t.Errorf("service %s publishes %q, want %q", svc, got[svc], w)
		}
	}
	for svc := range got {
		if _, ok := want[svc]; !ok {
			t.Errorf("service %s publishes %q, which this test does not know", svc, got[svc])
		}
	}
}

// composePorts maps each service of a compose file to its port entries.
func composePorts(compose string) map[string][]string {
	ports := map[string][]string{}
	service, inPorts := "", false
	for _, line := range strings.Split(compose, "\n") {
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case indent == 2 && strings.HasSuffix(trimmed, ":"):
			service, inPorts = strings.TrimSuffix(trimmed, ":"), false
		case indent == 4:
			inPorts = trimmed == "ports:"
		case inPorts && strings.HasPrefix(trimmed, "- "):
			ports[service] = append(ports[service], strings.TrimPrefix(trimmed, "- "))
		}
	}
	return ports
}

// TestMakeTestNamesTheCCompiler: go test -race needs cgo, and so a C
// compiler; without one make test fails first, naming gcc and how to
// install it, rather than with go's "-race requires cgo". With one it
// passes the check.
func TestMakeTestNamesTheCCompiler(t *testing.T) {
	t.Parallel()
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Fatalf("make is needed: %v", err)
	}
	unset := []string{"CC=", "CGO_ENABLED=", "GOFLAGS="}
	r := run(t, time.Minute, env(append(unset, pathOnly(t, "go"))...), makeBin, "-s", "check-cc")
	if r.code == 0 || !strings.Contains(r.out, "needs a C compiler") || !strings.Contains(r.out, "apt-get install -y gcc") {
		t.Errorf("without a C compiler: exit %d; want a failure naming gcc and its package; output:\n%s", r.code, r.out)
	}
	r = run(t, time.Minute, env(append(unset, "CGO_ENABLED=0")...), makeBin, "-s", "check-cc")
	if r.code == 0 || !strings.Contains(r.out, "CGO_ENABLED") {
		t.Errorf("with CGO_ENABLED=0: exit %d; want a failure naming it; output:\n%s", r.code, r.out)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatalf("gcc is needed by make test itself: %v", err)
	}
	if r = run(t, time.Minute, env(unset...), makeBin, "-s", "check-cc"); r.code != 0 {
		t.Errorf("with gcc installed: exit %d; output:\n%s", r.code, r.out)
	}
}

// TestMakeTestNamesPromtool: the tests of deploy/ need promtool to check
// the Prometheus rules; without it make test fails first, naming it and
// the package that has it. With it it passes the check.
func TestMakeTestNamesPromtool(t *testing.T) {
	t.Parallel()
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Fatalf("make is needed: %v", err)
	}
	r := run(t, time.Minute, env(pathOnly(t)), makeBin, "-s", "check-promtool")
	if r.code == 0 || !strings.Contains(r.out, "needs promtool") || !strings.Contains(r.out, "apt-get install -y prometheus") {
		t.Errorf("without promtool: exit %d; want a failure naming promtool and its package; output:\n%s", r.code, r.out)
	}
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatalf("promtool is needed by make test itself: %v", err)
	}
	if r = run(t, time.Minute, env(pathOnly(t, "promtool")), makeBin, "-s", "check-promtool"); r.code != 0 {
		t.Errorf("with promtool installed: exit %d; output:\n%s", r.code, r.out)
	}
}

// ---------------------------------------------------------------------------
// e2e.hurl and scripts/e2e-hurl.sh

// TestHurlFileUsesOnlyItsAddressVariables checks that every request of
// e2e.hurl goes to {{base}} or {{admin}}, the addresses make e2e-hurl
// passes, and that no address is written into it.
func TestHurlFileUsesOnlyItsAddressVariables(t *testing.T) {
	t.Parallel()
	hurl := readFile(t, filepath.Join(repoRoot(t), "e2e.hurl"))
	request := regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\S+)`)
	address := regexp.MustCompile(`localhost|127\.0\.0\.1|\[::1\]|:8080|:6060|:6061|https?://`)
	requests := 0
	for i, line := range strings.Split(hurl, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if m := request.FindStringSubmatch(line); m != nil {
			requests++
			if !strings.HasPrefix(m[2], "{{base}}/") && !strings.HasPrefix(m[2], "{{admin}}/") {
				t.Errorf("e2e.hurl:%d: %s goes to neither {{base}} nor {{admin}}", i+1, m[2])
			}
		}
		if address.MatchString(line) {
			t.Errorf("e2e.hurl:%d: an address written into the file: %s", i+1, line)
		}
	}
	if requests < 50 {
		t.Errorf("found %d requests in e2e.hurl; is the request pattern out of date?", requests)
	}
}

// TestHurlFileReferencesExist checks that every file e2e.hurl sends
// (file,PATH; in a body or a multipart form) is where Hurl looks for it
// when scripts/e2e-hurl.sh runs it: relative to the directory of the
// .hurl file, or to --file-root when the script passes one. The script
// runs from the repository's root.
func TestHurlFileReferencesExist(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	script := readFile(t, filepath.Join(root, "scripts", "e2e-hurl.sh"))
	var invocation []string
	for line := range strings.Lines(script) {
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == "hurl" && slices.Contains(fields, "--test") {
			invocation = fields
		}
	}
	if invocation == nil {
		t.Fatal("found no `hurl --test ...` line in scripts/e2e-hurl.sh; is the pattern out of date?")
	}
	hurlFile := invocation[len(invocation)-1]
	if !strings.HasSuffix(hurlFile, ".hurl") {
		t.Fatalf("the script's hurl line ends in %q, not a .hurl file", hurlFile)
	}
	fileRoot := filepath.Dir(filepath.Join(root, hurlFile))
	for i, a := range invocation {
		if v, ok := strings.CutPrefix(a, "--file-root="); ok {
			fileRoot = filepath.Join(root, v)
		} else if a == "--file-root" && i+1 < len(invocation) {
			fileRoot = filepath.Join(root, invocation[i+1])
		}
	}
	ref := regexp.MustCompile(`\bfile,([^;]+);`)
	refs := 0
	for i, line := range strings.Split(readFile(t, filepath.Join(root, hurlFile)), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range ref.FindAllStringSubmatch(line, -1) {
			refs++
			path := filepath.Join(fileRoot, strings.TrimSpace(m[1]))
			if _, err := os.Stat(path); err != nil {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d: Hurl would send %s, which does not exist: %v", hurlFile, i+1, rel, err)
			}
		}
	}
	if refs == 0 {
		t.Errorf("found no file, reference in %s; is the pattern out of date?", hurlFile)
	}
}

// pathOnly is a PATH of one directory that holds only the named programs
// (links to those of the inherited PATH).
func pathOnly(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return "PATH=" + dir
}

func TestE2EHurlNamesWhatToInstall(t *testing.T) {
	t.Parallel()
	t.Run("no hurl", func(t *testing.T) {
		t.Parallel()
		// Up to its check for hurl, the script needs only these.
		r := run(t, 30*time.Second, env("CI=true", pathOnly(t, "bash", "dirname")), "scripts/e2e-hurl.sh")
		if r.code == 0 || !strings.Contains(r.out, "hurl is not installed") || !strings.Contains(r.out, "Hurl 5.0.0 or newer") {
			t.Errorf("exit %d; want a failure that says hurl is missing and which version to install; output:\n%s", r.code, r.out)
		}
	})
	t.Run("old hurl", func(t *testing.T) {
		t.Parallel()
		bin := t.TempDir()
		writeExec(t, filepath.Join(bin, "hurl"), "#!/bin/sh\necho 'hurl 4.3.0 (x86_64-pc-linux-gnu) libcurl/7.88.1'\n")
		r := run(t, 30*time.Second, env("CI=true", pathWith(bin)), "scripts/e2e-hurl.sh")
		if r.code == 0 || !strings.Contains(r.out, "hurl 4.3.0 is too old") || !strings.Contains(r.out, "5.0.0 or newer") {
			t.Errorf("exit %d; want a failure that says hurl 4.3.0 is too old; output:\n%s", r.code, r.out)
		}
	})
}

// TestE2EHurlRunsHurlOnAFreshStack runs make e2e-hurl's script with a
// stand-in for hurl that records its arguments and makes the first calls
// of e2e.hurl against the addresses it was given, so that the real
// programs (built by the script) write to PostgreSQL and Redis. The script
// must give hurl an empty database, exit with hurl's status, and leave no
// program, schema or Redis key behind.
func TestE2EHurlRunsHurlOnAFreshStack(t *testing.T) {
	servicetest.Require(t)
	for _, name := range []string{"curl", "psql", "redis-cli", "go"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Fatalf("%s is needed by scripts/e2e-hurl.sh: %v", name, err)
		}
	}
	for _, status := range []int{0, 4} {
		t.Run(fmt.Sprintf("hurl exits %d", status), func(t *testing.T) {
			dir := t.TempDir()
			writeExec(t, filepath.Join(dir, "hurl"), fmt.Sprintf(`#!/usr/bin/env bash
set -u
if [[ $1 == --version ]]; then echo "hurl 6.1.1 (stand-in)"; exit 0; fi
dir=%[1]s
printf '%%s\n' "$@" >"$dir/args"
for a; do case $a in base=*) base=${a#base=} ;; admin=*) admin=${a#admin=} ;; esac; done
curl -s "$admin/readyz" >"$dir/readyz"
curl -s "$base/messages" >"$dir/before"
curl -s -X POST -H 'Content-Type: application/json' -d '{"text": "Hello, world", "user_id": "alice"}' "$base/messages" >"$dir/created"
curl -s "$base/messages" >"$dir/after"
redis-cli -u '%[2]s' --scan --pattern '*hurl:*' >"$dir/keys"
psql '%[3]s' -Atc "select nspname from pg_namespace where nspname like 'hurl\_%%'" >"$dir/schemas"
exit %[4]d
`, dir, testRedisURL(), testDatabaseURL(), status))
			vars := env("CI=true", pathWith(dir), "SERVICES_STATE_DIR="+filepath.Join(dir, "state"),
				"TEST_DATABASE_URL="+testDatabaseURL(), "TEST_REDIS_URL="+testRedisURL())

			r := run(t, 5*time.Minute, vars, "scripts/e2e-hurl.sh")

			if r.code != status {
				t.Fatalf("e2e-hurl.sh exited %d, want hurl's %d; output:\n%s", r.code, status, r.out)
			}
			m := regexp.MustCompile(`schema (hurl_[0-9a-f]+) in database \S+, Redis key prefix (hurl:[0-9a-f]+:)`).FindStringSubmatch(r.out)
			if m == nil {
				t.Fatalf("the output does not name the schema and prefix:\n%s", r.out)
			}
			schema, prefix := m[1], m[2]

			args := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, "args"))), "\n")
			var base, admin string
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, "base="); ok {
					base = v
				}
				if v, ok := strings.CutPrefix(a, "admin="); ok {
					admin = v
				}
			}
			if strings.Join(args, " ") != fmt.Sprintf("--test --jobs 1 --variable base=%s --variable admin=%s e2e.hurl", base, admin) {
				t.Errorf("hurl ran with %q", args)
			}
			for _, u := range []string{base, admin} {
				parsed, err := url.Parse(u)
				if err != nil || parsed.Hostname() != "127.0.0.1" || parsed.Port() == "" || parsed.Port() == "8080" || parsed.Port() == "6060" {
					t.Errorf("hurl got address %q, want a free port of 127.0.0.1", u)
				}
			}
			if got := readFile(t, filepath.Join(dir, "readyz")); !strings.Contains(got, `"status":"ok"`) {
				t.Errorf("the API was not ready when hurl ran: %s", got)
			}
			if got := strings.TrimSpace(readFile(t, filepath.Join(dir, "before"))); got != `{"messages":[]}` {
				t.Errorf("the database was not empty when hurl ran: %s", got)
			}
			if got := readFile(t, filepath.Join(dir, "created")); !strings.Contains(got, `"text":"Hello, world"`) {
				t.Errorf("POST /messages gave %s", got)
			}
			if got := readFile(t, filepath.Join(dir, "keys")); !strings.Contains(got, prefix) {
				t.Errorf("no Redis key under %s while hurl ran: %q", prefix, got)
			}
			if got := readFile(t, filepath.Join(dir, "schemas")); !strings.Contains(got, schema) {
				t.Errorf("schema %s did not exist while hurl ran: %q", schema, got)
			}

			// Afterwards: the programs stopped, the schema and keys gone.
			for _, u := range []string{base, admin} {
				if parsed, err := url.Parse(u); err == nil && reachable(parsed.Host) {
					t.Errorf("something still listens on %s", parsed.Host)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "psql", testDatabaseURL(), "-Atc",
				fmt.Sprintf("select count(*) from pg_namespace where nspname = '%s'", schema)).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "0" {
				t.Errorf("schema %s is still there (%v): %s", schema, err, out)
			}
			out, err = exec.CommandContext(ctx, "redis-cli", "-u", testRedisURL(), "--scan", "--pattern", "*"+prefix+"*").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "" {
				t.Errorf("Redis keys under %s are still there (%v): %s", prefix, err, out)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// loadtest/bench.sh

// TestBenchUsesTheConfiguredServers runs loadtest/bench.sh with stand-ins
// for its tools, up to its first Redis command, and checks that it makes
// its database and flushes its Redis database on the servers of
// DATABASE_URL and REDIS_URL, as scripts/services.sh checks them.
func TestBenchUsesTheConfiguredServers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		admin     string // ADMIN_DATABASE_URL, or none
		wantAdmin string // %d: the PostgreSQL port
	}{
		{"default admin", "", "postgres://postgres@127.0.0.1:%d/postgres"},
		{"ADMIN_DATABASE_URL", "postgres://root:secret@127.0.0.1:%d/template1", "postgres://root:secret@127.0.0.1:%d/template1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin := t.TempDir()
			log := filepath.Join(bin, "calls.log")
			for _, tool := range []string{"wrk", "hey", "pgbench", "psql"} {
				writeExec(t, filepath.Join(bin, tool), fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >>%s\n", tool, log))
			}
			// The first Redis command fails: the last one this test lets run.
			writeExec(t, filepath.Join(bin, "redis-cli"), fmt.Sprintf("#!/bin/sh\necho \"redis-cli $*\" >>%s\nexit 7\n", log))
			pgPort, redisPort := listening(t), listening(t)
			vars := []string{"CI=true", "SERVICES_STATE_DIR=" + filepath.Join(bin, "state"), pathWith(bin),
				fmt.Sprintf("DATABASE_URL=postgres://bencher:pw@127.0.0.1:%d/message-api?sslmode=disable", pgPort),
				fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", redisPort)}
			if tc.admin != "" {
				vars = append(vars, "ADMIN_DATABASE_URL="+fmt.Sprintf(tc.admin, pgPort))
			}

			r := run(t, 60*time.Second, env(vars...), "loadtest/bench.sh")

			if r.code == 0 {
				t.Fatalf("bench.sh went on after the stand-in redis-cli failed; output:\n%s", r.out)
			}
			calls := readFile(t, log)
			for _, want := range []string{
				fmt.Sprintf(`psql %s -qc drop database if exists "message-api-bench" -c create database "message-api-bench" owner "bencher"`, fmt.Sprintf(tc.wantAdmin, pgPort)),
				fmt.Sprintf("redis-cli -u redis://127.0.0.1:%d/14 flushdb", redisPort),
			} {
				if !strings.Contains(calls, want) {
					t.Errorf("no %q among the calls:\n%s", want, calls)
				}
			}
			if want := fmt.Sprintf("database message-api-bench on 127.0.0.1:%d owned by bencher, Redis database 14 on 127.0.0.1:%d", pgPort, redisPort); !strings.Contains(r.out, want) {
				t.Errorf("output does not say %q:\n%s", want, r.out)
			}
			if regexp.MustCompile(`:(5432|6379)\b`).MatchString(calls) {
				t.Errorf("bench.sh used a default port instead of the configured ones:\n%s", calls)
			}
		})
	}
}
