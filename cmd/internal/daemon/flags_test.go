package daemon

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestFlagsTakeEnvironmentAndFlagsWin(t *testing.T) {
	env := map[string]string{"ADDR": "env:1", "WORKERS": "7", "TIMEOUT": "3s", "DEBUG": "true"}
	f := NewFlags("test", func(k string) string { return env[k] }, io.Discard)
	addr := f.String("addr", "ADDR", "default:1", "")
	workers := f.Int("workers", "WORKERS", 1, "")
	timeout := f.Duration("timeout", "TIMEOUT", time.Second, "")
	debug := f.Bool("debug", "DEBUG", false, "")
	if err := f.Parse([]string{"-workers", "9"}); err != nil {
		t.Fatal(err)
	}
	if *addr != "env:1" || *workers != 9 || *timeout != 3*time.Second || !*debug {
		t.Errorf("got addr %q workers %d timeout %v debug %v; want the environment, with -workers from the flag", *addr, *workers, *timeout, *debug)
	}
}

func TestFlagsNameTheBadSetting(t *testing.T) {
	tests := []struct {
		env      map[string]string
		args     []string
		mentions []string
	}{
		{map[string]string{"WORKERS": "many"}, nil, []string{"WORKERS", "-workers", "not an integer"}},
		{map[string]string{"TIMEOUT": "soon"}, nil, []string{"TIMEOUT", "-timeout", "duration"}},
		{map[string]string{"DEBUG": "maybe"}, nil, []string{"DEBUG", "-debug"}},
		{nil, []string{"-workers", "x"}, []string{"-workers"}},
		{nil, []string{"serve"}, []string{"unexpected argument", "serve"}},
	}
	for _, tt := range tests {
		f := NewFlags("test", func(k string) string { return tt.env[k] }, io.Discard)
		f.Int("workers", "WORKERS", 1, "")
		f.Duration("timeout", "TIMEOUT", time.Second, "")
		f.Bool("debug", "DEBUG", false, "")
		err := f.Parse(tt.args)
		if err == nil {
			t.Errorf("env %v args %v: no error", tt.env, tt.args)
			continue
		}
		for _, m := range tt.mentions {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("error %q does not mention %q", err, m)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q is more than one line", err)
		}
	}
}
