package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"messageapi/projection"
)

func TestConfigRejectsBadSettingsByName(t *testing.T) {
	tests := []struct {
		env      map[string]string
		args     []string
		mentions []string
	}{
		{nil, []string{"-batch-size", "0"}, []string{"-batch-size"}},
		{nil, []string{"-batch-size", "20000"}, []string{"-batch-size", "10000"}},
		{nil, []string{"-consumer", ""}, []string{"-consumer"}},
		{nil, []string{"-block", "2s", "-claim-min-idle", "1s"}, []string{"-claim-min-idle", "-block"}},
		// The fold of a batch must end before a peer may claim it.
		{nil, []string{"-fold-timeout", "30s", "-claim-min-idle", "30s"}, []string{"-fold-timeout", "-claim-min-idle"}},
		{map[string]string{"FOLD_TIMEOUT": "40s"}, nil, []string{"-fold-timeout", "-claim-min-idle"}},
		{map[string]string{"SWEEP_MIN_AGE": "soon"}, nil, []string{"SWEEP_MIN_AGE", "-sweep-min-age"}},
	}
	for _, tt := range tests {
		_, _, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
		if err == nil {
			t.Errorf("env %v args %v: no error", tt.env, tt.args)
			continue
		}
		for _, m := range tt.mentions {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("env %v args %v: error %q does not mention %s", tt.env, tt.args, err, m)
			}
		}
	}
}

func TestConfigDefaultsComeFromTheProjection(t *testing.T) {
	c, sub, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := projection.DefaultConfig()
	d.Consumer = c.projection.Consumer
	if sub != "run" || c.projection != d || c.AdminAddr != "localhost:6061" || c.ShutdownGrace != 10*time.Second {
		t.Errorf("defaults = %+v, want the projection's %+v", c.projection, d)
	}
}

// TestConfigKeepsOldEnvironmentNames: GROUP, CONSUMER and BLOCK follow the
// pattern of the other settings; the old STREAM_* names still work.
func TestConfigKeepsOldEnvironmentNames(t *testing.T) {
	env := map[string]string{"STREAM_GROUP": "g1", "STREAM_CONSUMER": "c1", "STREAM_BLOCK": "2s", "BLOCK": "3s"}
	c, _, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.projection.Group != "g1" || c.projection.Consumer != "c1" || c.projection.Block != 3*time.Second {
		t.Errorf("group %q consumer %q block %v; want g1, c1 and 3s (BLOCK wins over STREAM_BLOCK)",
			c.projection.Group, c.projection.Consumer, c.projection.Block)
	}
}
