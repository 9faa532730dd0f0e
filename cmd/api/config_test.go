package main

import (
	"io"
	"strings"
	"testing"

	"messageapi/cmd/internal/daemon"
	"messageapi/redis"
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
	if sub != "serve" || c.addr != "localhost:8080" || c.AdminAddr != "localhost:6060" || c.DatabaseURL != daemon.DefaultDatabaseURL ||
		c.RedisURL != daemon.DefaultRedisURL || c.RedisPrefix != daemon.DefaultRedisPrefix || c.cachePages != redis.DefaultCachePages || c.rateLimit != 0 {
		t.Errorf("defaults = %+v (%s)", c, sub)
	}
	if _, sub, _ := parseConfig([]string{"migrate"}, func(string) string { return "" }, io.Discard); sub != "migrate" {
		t.Errorf("subcommand = %q, want migrate", sub)
	}
}

// TestRedisPrefixFollowsTheSchema: two schemas of one database, or two
// databases, on one Redis never share cached pages or the stream, unless
// a prefix is set explicitly.
func TestRedisPrefixFollowsTheSchema(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{nil, "messageapi:"},
		{map[string]string{"DATABASE_URL": "postgres://u@localhost/message-api?search_path=other"}, "messageapi:message-api:other:"},
		{map[string]string{"DATABASE_URL": "postgres://u@localhost/other-db"}, "messageapi:other-db:public:"},
		{map[string]string{"DATABASE_URL": "postgres://u@localhost/message-api?search_path=other", "REDIS_PREFIX": "mine:"}, "mine:"},
	}
	for _, tt := range tests {
		c, _, err := parseConfig(nil, func(k string) string { return tt.env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.RedisPrefix != tt.want {
			t.Errorf("env %v: prefix %q, want %q", tt.env, c.RedisPrefix, tt.want)
		}
	}
	if _, _, err := parseConfig([]string{"-redis-prefix", "a{b}:"}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "redis-prefix") {
		t.Errorf("a prefix with a hash tag: %v, want an error naming -redis-prefix", err)
	}
}

// TestFlagWinsOverABadEnvironmentValue: an environment value that a flag
// overrides is not parsed, so it cannot stop the program.
func TestFlagWinsOverABadEnvironmentValue(t *testing.T) {
	env := map[string]string{"CACHE_PAGES": "abc"}
	c, _, err := parseConfig([]string{"-cache-pages", "7"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.cachePages != 7 {
		t.Fatalf("CACHE_PAGES=abc api -cache-pages 7: %d, %v; want 7 and no error", c.cachePages, err)
	}
}

func TestHelpListsSubcommands(t *testing.T) {
	var out strings.Builder
	if _, _, err := parseConfig([]string{"-h"}, func(string) string { return "" }, &out); err == nil {
		t.Fatal("-h: no flag.ErrHelp")
	}
	for _, want := range []string{"migrate", "healthcheck", "-cache-pages", "CACHE_PAGES"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("api -h lacks %q", want)
		}
	}
}
