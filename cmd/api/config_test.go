package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"messageapi/auth"
	"messageapi/cmd/internal/daemon"
	"messageapi/postgres/postgrestest"
	"messageapi/redis/pagecache"
	"messageapi/redis/redistest"
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
		{nil, []string{"-cache-bytes", "1000"}, "cache-bytes"},
		{map[string]string{"NEAR_CACHE_BYTES": "1000"}, nil, "near-cache-bytes"},
		{nil, []string{"-cache-channels", "-1"}, "cache-channels"},
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
		c.RedisURL != daemon.DefaultRedisURL || c.RedisPrefix != daemon.DefaultRedisPrefix || c.cachePages != pagecache.DefaultPages || c.rateLimit != 0 {
		t.Errorf("defaults = %+v (%s)", c, sub)
	}
	if c.cacheBytes != pagecache.DefaultBytes || c.nearCacheBytes != pagecache.DefaultNearCacheBytes || c.cacheChannels != 0 {
		t.Errorf("cache budgets = %d, %d, %d channels; want %d, %d, no cap", c.cacheBytes, c.nearCacheBytes, c.cacheChannels,
			pagecache.DefaultBytes, pagecache.DefaultNearCacheBytes)
	}
	// A deployment that set the count of channels still starts: it now
	// caps the channels cached for every process together.
	if c, _, err := parseConfig(nil, func(k string) string { return map[string]string{"CACHE_CHANNELS": "64"}[k] }, io.Discard); err != nil || c.cacheChannels != 64 {
		t.Errorf("CACHE_CHANNELS=64: %d, %v; want 64 and no error", c.cacheChannels, err)
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

func TestAuthConfigRejectsBadSettingsByName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notJWKS := filepath.Join(dir, "not.json")
	if err := os.WriteFile(notJWKS, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	jwks := testJWKS(t)
	tests := []struct {
		env     map[string]string
		args    []string
		setting string
	}{
		{map[string]string{"AUTH_SECRET": "short"}, nil, "auth-secret"},
		{map[string]string{"AUTH_SECRET": testSecret, "AUTH_SECRET_FILE": secretFile}, nil, "auth-secret-file"},
		{map[string]string{"AUTH_SECRET_FILE": filepath.Join(dir, "missing")}, nil, "auth-secret-file"},
		{map[string]string{"AUTH_SECRET": testSecret, "AUTH_JWKS": jwks}, nil, "auth-jwks"},
		{map[string]string{"AUTH_JWKS": notJWKS}, nil, "auth-jwks"},
		{map[string]string{"AUTH_JWKS": filepath.Join(dir, "missing")}, nil, "auth-jwks"},
		{nil, []string{"-auth-reads"}, "auth-reads"},
		{map[string]string{"AUTH_AUDIENCE": "message-api"}, nil, "auth-audience"},
		{map[string]string{"AUTH_ISSUER": "https://id.example.com"}, nil, "auth-issuer"},
		{map[string]string{"AUTH_SECRET": testSecret}, []string{"-auth-leeway", "-1s"}, "auth-leeway"},
		{map[string]string{"AUTH_READS": "maybe"}, nil, "AUTH_READS"},
		{map[string]string{"CORS_ORIGINS": "https://chat.example.com, chat.example.com"}, nil, "cors-origins"},
		{map[string]string{"CORS_ORIGINS": "https://chat.example.com/"}, nil, "cors-origins"},
		{map[string]string{"CORS_ORIGINS": "https://*.*.example.com"}, nil, "cors-origins"},
		{map[string]string{"AUTH_SECRET": testSecret}, []string{"token"}, "sub"},
		{map[string]string{"AUTH_SECRET": testSecret}, []string{"token", "-sub", "alice smith"}, "sub"},
		{map[string]string{"AUTH_SECRET": testSecret}, []string{"token", "-sub", "alice", "-role", "admin"}, "role"},
		{map[string]string{"AUTH_SECRET": testSecret}, []string{"token", "-sub", "alice", "-ttl", "0s"}, "ttl"},
		{map[string]string{"AUTH_SECRET": testSecret}, []string{"-sub", "alice"}, "sub"}, // only the token subcommand has -sub
	}
	for _, tt := range tests {
		_, _, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.setting) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v args %v: error %v, want one line naming %s", tt.env, tt.args, err, tt.setting)
		}
	}
}

func TestAuthConfig(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(testSecret+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	c, _, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil || c.auth.Enabled() || c.auth.Leeway != 30*time.Second || c.corsOrigins != nil {
		t.Errorf("defaults: auth %+v, cors %v, %v; want auth off, leeway 30s, no origins", c.auth, c.corsOrigins, err)
	}
	c, _, err = parseConfig(nil, env(map[string]string{"AUTH_SECRET_FILE": secretFile, "AUTH_READS": "true"}), io.Discard)
	if err != nil || string(c.auth.Secret) != testSecret || !c.auth.Reads {
		t.Errorf("AUTH_SECRET_FILE: secret %q, reads %v, %v; want the file's line and reads on", c.auth.Secret, c.auth.Reads, err)
	}
	c, _, err = parseConfig([]string{"-auth-jwks", testJWKS(t), "-auth-audience", "message-api"}, env(nil), io.Discard)
	if err != nil || len(c.auth.Keys) != 2 || c.auth.Audience != "message-api" {
		t.Errorf("-auth-jwks: %d keys, audience %q, %v; want 2 keys", len(c.auth.Keys), c.auth.Audience, err)
	}
	c, _, err = parseConfig(nil, env(map[string]string{"CORS_ORIGINS": " https://chat.example.com ,https://*.example.org:8443,http://localhost:5173"}), io.Discard)
	if err != nil || strings.Join(c.corsOrigins, " ") != "https://chat.example.com https://*.example.org:8443 http://localhost:5173" {
		t.Errorf("CORS_ORIGINS: %q, %v", c.corsOrigins, err)
	}
}

// TestTokenSubcommand mints tokens with api token and checks that the API
// accepts them as what they claim; without a secret it refuses in one
// line.
func TestTokenSubcommand(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AUTH_SECRET": testSecret, "AUTH_AUDIENCE": "message-api", "AUTH_ISSUER": "dev"}
	getenv := func(k string) string { return env[k] }
	v := auth.NewVerifier(auth.Config{Secret: []byte(testSecret), Audience: "message-api", Issuer: "dev"})
	for _, tt := range []struct {
		args   []string
		server bool
	}{
		{[]string{"token", "-sub", "alice"}, false},
		{[]string{"token", "-sub", "backend", "-role", "server", "-ttl", "10m"}, true},
	} {
		var out strings.Builder
		if err := run(context.Background(), tt.args, getenv, &out); err != nil {
			t.Fatalf("api %v: %v", tt.args, err)
		}
		id, failure := v.Verify([]string{"Bearer " + strings.TrimSuffix(out.String(), "\n")})
		if failure != nil || id.Subject != tt.args[2] || id.Server != tt.server {
			t.Errorf("api %v printed %q: %+v, %v; want a token for %s (server %v)", tt.args, out.String(), id, failure, tt.args[2], tt.server)
		}
	}
	var out strings.Builder
	err := run(context.Background(), []string{"token", "-sub", "alice"}, func(string) string { return "" }, &out)
	if err == nil || !strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "\n") || out.Len() != 0 {
		t.Errorf("api token without a secret: %v, printed %q; want one line asking for a secret", err, out.String())
	}
}

// TestStartUpSaysWhetherAuthIsOn: an open API warns at start-up; one with
// a key says what it checks.
func TestStartUpSaysWhetherAuthIsOn(t *testing.T) {
	t.Parallel()
	const warning = "authentication is off: any client can act as any user; configure -auth-secret or -auth-jwks in production"
	for _, tt := range []struct {
		env  map[string]string
		want string
		not  string
	}{
		{map[string]string{}, warning, "authentication is on"},
		{map[string]string{"AUTH_SECRET": testSecret}, "authentication is on", warning},
	} {
		tt.env["ADDR"], tt.env["ADMIN_ADDR"] = "127.0.0.1:0", "127.0.0.1:0"
		tt.env["DATABASE_URL"], tt.env["REDIS_URL"] = postgrestest.NewSchema(t), redistest.URL()
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // start, log, stop at once
		var out strings.Builder
		if err := run(ctx, nil, func(k string) string { return tt.env[k] }, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tt.want) || strings.Contains(out.String(), tt.not) {
			t.Errorf("env %v: start-up log lacks %q or has %q:\n%s", tt.env, tt.want, tt.not, out.String())
		}
	}
}
