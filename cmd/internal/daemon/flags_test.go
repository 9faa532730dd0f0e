package daemon

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

type settings struct {
	addr    string
	workers int
	timeout time.Duration
	debug   bool
}

func defineSettings(f *Flags) *settings {
	var s settings
	f.String(&s.addr, "addr", "default:1", "", "ADDR")
	f.Int(&s.workers, "workers", 1, "", "WORKERS", "OLD_WORKERS")
	f.Duration(&s.timeout, "timeout", time.Second, "", "TIMEOUT")
	f.Bool(&s.debug, "debug", false, "", "DEBUG")
	return &s
}

func TestFlagsTakeEnvironmentAndFlagsWin(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want settings
	}{
		{"defaults", nil, nil, settings{"default:1", 1, time.Second, false}},
		{"environment", map[string]string{"ADDR": "env:1", "WORKERS": "7", "TIMEOUT": "3s", "DEBUG": "true"}, nil,
			settings{"env:1", 7, 3 * time.Second, true}},
		{"a flag wins", map[string]string{"WORKERS": "7"}, []string{"-workers", "9"}, settings{"default:1", 9, time.Second, false}},
		// An environment value that a flag overrides is not even parsed.
		{"a flag hides a bad environment value", map[string]string{"WORKERS": "many", "TIMEOUT": "soon"},
			[]string{"-workers", "2", "-timeout", "5s"}, settings{"default:1", 2, 5 * time.Second, false}},
		{"an old name still works", map[string]string{"OLD_WORKERS": "4"}, nil, settings{"default:1", 4, time.Second, false}},
		{"the new name wins over the old", map[string]string{"OLD_WORKERS": "4", "WORKERS": "5"}, nil, settings{"default:1", 5, time.Second, false}},
	}
	for _, tt := range tests {
		f := NewFlags("test", "", func(k string) string { return tt.env[k] }, io.Discard)
		s := defineSettings(f)
		if err := f.Parse(tt.args); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if *s != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, *s, tt.want)
		}
	}
}

func TestFlagsNameTheBadSetting(t *testing.T) {
	tests := []struct {
		env      map[string]string
		args     []string
		mentions []string
	}{
		{map[string]string{"WORKERS": "many"}, nil, []string{"WORKERS", "-workers", "not an integer"}},
		{map[string]string{"OLD_WORKERS": "many"}, nil, []string{"OLD_WORKERS", "-workers", "not an integer"}},
		{map[string]string{"TIMEOUT": "soon"}, nil, []string{"TIMEOUT", "-timeout", "duration"}},
		{map[string]string{"DEBUG": "maybe"}, nil, []string{"DEBUG", "-debug"}},
		{nil, []string{"-workers", "x"}, []string{"-workers", "not an integer"}},
		{nil, []string{"serve"}, []string{"unexpected argument", "serve"}},
	}
	for _, tt := range tests {
		f := NewFlags("test", "", func(k string) string { return tt.env[k] }, io.Discard)
		defineSettings(f)
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

func TestHelpListsSubcommandsAndEnvironment(t *testing.T) {
	var out bytes.Buffer
	f := NewFlags("test", "Usage: test [frob]\n\nSubcommands:\n  frob   frobs", func(string) string { return "" }, &out)
	defineSettings(f)
	if err := f.Parse([]string{"-h"}); err == nil {
		t.Fatal("-h returned no error; want flag.ErrHelp")
	}
	for _, want := range []string{"frob   frobs", "-workers", "env WORKERS, or OLD_WORKERS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDerivePrefix(t *testing.T) {
	tests := []struct{ url, want string }{
		{DefaultDatabaseURL, "messageapi:"},
		{"postgres://u@h/message-api?search_path=public", "messageapi:"},
		{"postgres://u@h/message-api?search_path=other", "messageapi:message-api:other:"},
		{"postgres://u@h/chat", "messageapi:chat:public:"},
		{"postgres://u@h/chat?search_path=%7Bx%7D%2Cpublic", "messageapi:chat:_x_:"},
	}
	for _, tt := range tests {
		if got := DerivePrefix(tt.url); got != tt.want {
			t.Errorf("DerivePrefix(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}
