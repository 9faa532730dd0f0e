package main

import (
	"io"
	"strings"
	"testing"
)

func TestConfigRejectsBadSettingsByName(t *testing.T) {
	tests := []struct {
		env     map[string]string
		args    []string
		setting string
	}{
		{nil, []string{"-db-max-conns", "0"}, "db-max-conns"},
		{nil, []string{"-log-level", "loud"}, "log-level"},
		{nil, []string{"-cache-pages", "0"}, "cache-pages"},
		{nil, []string{"-cache-ttl", "10ms"}, "cache-ttl"},
		{nil, []string{"-rate-limit", "-1"}, "rate-limit"},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, not-a-cidr"}, nil, "trusted-proxies"},
		{map[string]string{"REQUEST_TIMEOUT": "fast"}, nil, "REQUEST_TIMEOUT"},
		{map[string]string{"DATABASE_URL": ""}, []string{"-stream-max-len", "5"}, "stream-max-len"},
	}
	for _, tt := range tests {
		_, _, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.setting) {
			t.Errorf("env %v args %v: error %v, want one naming %s", tt.env, tt.args, err, tt.setting)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c, sub, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sub != "serve" || c.addr != "localhost:8080" || c.adminAddr != "localhost:6060" || c.databaseURL != defaultDatabaseURL ||
		c.redisURL != defaultRedisURL || c.cachePages != 5 || c.rateLimit != 0 {
		t.Errorf("defaults = %+v (%s)", c, sub)
	}
	if _, sub, _ := parseConfig([]string{"migrate"}, func(string) string { return "" }, io.Discard); sub != "migrate" {
		t.Errorf("subcommand = %q, want migrate", sub)
	}
}
