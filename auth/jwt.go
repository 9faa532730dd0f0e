package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"messageapi"
)

// Config is how the API authenticates requests. With neither a secret
// nor keys it is off: the API is open, as in development.
type Config struct {
	Secret   []byte        // HS256 shared secret
	Keys     []Key         // public keys from a JWKS file
	Audience string        // required aud, when set
	Issuer   string        // required iss, when set
	Leeway   time.Duration // clock skew allowed on exp and nbf
	Reads    bool          // reads need a token too
}

// Enabled reports whether requests are authenticated.
func (c Config) Enabled() bool { return len(c.Secret) > 0 || len(c.Keys) > 0 }

// Load reads the key material named by the auth settings: an HS256
// secret, given itself or in a file, or a JWKS file. Its errors name the
// flag at fault.
func (c *Config) Load(secret, secretFile, jwks string) error {
	if secretFile != "" {
		if secret != "" {
			return errors.New("invalid -auth-secret-file: set -auth-secret or -auth-secret-file, not both")
		}
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return fmt.Errorf("invalid -auth-secret-file: %v", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	if secret != "" {
		if len(secret) < MinSecretBytes {
			return fmt.Errorf("invalid -auth-secret: must be at least %d bytes, not %d", MinSecretBytes, len(secret))
		}
		c.Secret = []byte(secret)
	}
	if jwks != "" {
		if secret != "" {
			return errors.New("invalid -auth-jwks: set either an HS256 secret (-auth-secret, -auth-secret-file) or -auth-jwks, not both")
		}
		keys, err := LoadJWKS(jwks)
		if err != nil {
			return fmt.Errorf("invalid -auth-jwks: %v", err)
		}
		c.Keys = keys
	}
	return nil
}

// MinSecretBytes is the shortest HS256 secret accepted: RFC 7518 §3.2
// asks for a key at least as long as the hash, 256 bits.
const MinSecretBytes = 32

// RoleServer is the value of the "role" claim that makes a server token.
const RoleServer = "server"

// Identity is who a verified token speaks for.
type Identity struct {
	Subject string // the token's sub, a valid user id
	Server  bool   // a server token may act for any user
}

// Error is why a request is unauthenticated, in the terms of RFC 6750
// §3.1. Description is fixed text for the client; Cause, which may hold
// library text, goes only to the debug log.
type Error struct {
	Code        string // "" (no credentials), invalid_request or invalid_token
	Description string
	Cause       error
}

// ErrNoToken is the Error of a request that needs a token and has none.
var ErrNoToken = &Error{Description: "this request needs a bearer token in the Authorization header"}

// Challenge is the WWW-Authenticate value for e. The descriptions are
// fixed strings without quotes or backslashes, as a quoted-string needs.
func (e *Error) Challenge() string {
	if e.Code == "" {
		return `Bearer realm="message-api"`
	}
	return fmt.Sprintf(`Bearer realm="message-api", error=%q, error_description=%q`, e.Code, e.Description)
}

// Verifier checks bearer tokens: the signature with the configured key
// and only the configured algorithms, then exp (required), nbf, aud and
// iss, and that sub is a user id.
//
// It remembers the tokens it accepted, until they expire: a client sends
// the same token with every request, and verifying it again (decoding,
// a signature check, the claims) costs a fifth of a cached page's time.
// The keys and rules never change while the process runs, so a
// remembered verdict is the one verifying again would give, until exp
// plus the leeway.
type Verifier struct {
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
	leeway  time.Duration
	now     func() time.Time

	mu    sync.RWMutex
	known map[string]knownToken
}

// knownToken is an accepted token's identity, and until when it holds.
type knownToken struct {
	id    Identity
	until time.Time
}

// maxKnownTokens bounds the tokens a verifier remembers (about 200 bytes
// each); past it, it starts afresh.
const maxKnownTokens = 50_000

// NewVerifier returns the verifier of c, or nil when auth is off.
func NewVerifier(c Config) *Verifier {
	if !c.Enabled() {
		return nil
	}
	// One kind of key at a time, and the parser accepts only the
	// algorithms of those keys: never "none", and never an algorithm the
	// token picks, so an HS256 token "signed" with an RSA public key is
	// refused before any key is looked at.
	var methods []string
	var keyfunc jwt.Keyfunc
	if len(c.Secret) > 0 {
		secret := c.Secret
		methods = []string{jwt.SigningMethodHS256.Alg()}
		keyfunc = func(*jwt.Token) (any, error) { return secret, nil }
	} else {
		seen := map[string]bool{}
		for _, k := range c.Keys {
			if !seen[k.alg] {
				seen[k.alg] = true
				methods = append(methods, k.alg)
			}
		}
		keyfunc = selectKey(c.Keys)
	}
	v := &Verifier{keyfunc: keyfunc, leeway: c.Leeway, now: time.Now, known: map[string]knownToken{}}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithLeeway(c.Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() })}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v
}

// tokenClaims are the claims the API reads. Role is any JSON value: only
// the string "server" makes a server token, so an identity provider's own
// role claims ("authenticated", a list) leave a user token.
type tokenClaims struct {
	jwt.RegisteredClaims
	Role any `json:"role,omitempty"`
}

// Verify checks the Authorization header values of a request, which has
// at least one.
func (v *Verifier) Verify(values []string) (Identity, *Error) {
	if len(values) != 1 {
		return Identity{}, &Error{Code: "invalid_request", Description: "send one Authorization header"}
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	token = strings.TrimLeft(token, " ")
	if !strings.EqualFold(scheme, "Bearer") || !isToken68(token) {
		return Identity{}, &Error{Code: "invalid_request", Description: "the Authorization header must be Bearer followed by a token"}
	}
	now := v.now()
	v.mu.RLock()
	known, ok := v.known[token]
	v.mu.RUnlock()
	if ok && now.Before(known.until) {
		return known.id, nil
	}
	var claims tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &claims, v.keyfunc); err != nil {
		return Identity{}, &Error{Code: "invalid_token", Description: tokenProblem(err), Cause: err}
	}
	switch {
	case claims.Subject == "":
		return Identity{}, &Error{Code: "invalid_token", Description: "the token has no subject (sub)"}
	case !messageapi.ValidUserID(claims.Subject):
		return Identity{}, &Error{Code: "invalid_token", Description: "the token's subject (sub) is not a valid user id"}
	}
	id := Identity{Subject: claims.Subject, Server: claims.Role == RoleServer}
	v.mu.Lock()
	if len(v.known) >= maxKnownTokens {
		clear(v.known)
	}
	v.known[token] = knownToken{id: id, until: claims.ExpiresAt.Add(v.leeway)} // exp is required
	v.mu.Unlock()
	return id, nil
}

// tokenProblem describes a refused token for its client in words of our
// own, never the library's.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim (exp, or aud or iss where they are checked)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token is not meant for this service (aud)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token's issuer (iss) is not accepted"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's algorithm, key or signature is not accepted"
	}
	return "the token is not valid"
}

// isToken68 reports whether s is a non-empty b64token (RFC 6750 §2.1).
func isToken68(s string) bool {
	t := strings.TrimRight(s, "=")
	if t == "" {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// Key is a public key from the JWKS file and the one
// algorithm it verifies.
type Key struct {
	id  string // kid, "" when the file gives none
	alg string // RS256 or EdDSA
	key any    // *rsa.PublicKey or ed25519.PublicKey
}

// selectKey returns the keys a token may be signed with: those of its
// algorithm, and of its kid when it names one.
func selectKey(keys []Key) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, hasKid := t.Header["kid"]
		var set jwt.VerificationKeySet
		for _, k := range keys {
			if k.alg == t.Method.Alg() && (!hasKid || kid == any(k.id)) {
				set.Keys = append(set.Keys, k.key)
			}
		}
		if len(set.Keys) == 0 {
			return nil, fmt.Errorf("no %s key with kid %v", t.Method.Alg(), kid)
		}
		return set, nil
	}
}

// LoadJWKS reads the public keys of a JWKS file (RFC 7517): RSA keys of at
// least 2048 bits, for RS256, and Ed25519 keys (OKP), for EdDSA. Keys for
// encryption ("use": "enc") are skipped. Any other key, private and
// symmetric keys included, is an error, so a mistaken file stops start-up
// rather than refusing every token.
func LoadJWKS(path string) ([]Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s is not a JWKS file: %v", path, err)
	}
	var keys []Key
	kids := map[string]bool{}
	for i, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("key %d: %v", i, err)
		}
		if jwk.Use == "enc" {
			continue
		}
		name := fmt.Sprintf("key %d (kid %q)", i, jwk.KeyID)
		k := Key{id: jwk.KeyID}
		switch key := jwk.Key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < 2048 {
				return nil, fmt.Errorf("%s: an RSA key must have at least 2048 bits, not %d", name, key.N.BitLen())
			}
			k.alg, k.key = jwt.SigningMethodRS256.Alg(), key
		case ed25519.PublicKey:
			k.alg, k.key = jwt.SigningMethodEdDSA.Alg(), key
		default:
			if !jwk.IsPublic() {
				return nil, fmt.Errorf("%s is a private or symmetric key; the file must hold public keys only", name)
			}
			return nil, fmt.Errorf("%s is a %T; only RSA (RS256) and Ed25519 (EdDSA) keys are supported", name, jwk.Key)
		}
		switch {
		case jwk.Use != "" && jwk.Use != "sig":
			return nil, fmt.Errorf("%s has use %q; want sig", name, jwk.Use)
		case jwk.Algorithm != "" && jwk.Algorithm != k.alg:
			return nil, fmt.Errorf("%s has alg %q; an RSA key must be RS256 and an Ed25519 key EdDSA", name, jwk.Algorithm)
		case k.id != "" && kids[k.id]:
			return nil, fmt.Errorf("%s: the kid is used twice", name)
		}
		kids[k.id] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no signing key", path)
	}
	return keys, nil
}

// Mint signs a development token with the HS256 secret.
func Mint(c Config, subject string, server bool, ttl time.Duration, now time.Time) (string, error) {
	if len(c.Secret) == 0 {
		return "", errors.New("token: no secret to sign with; set -auth-secret, AUTH_SECRET, -auth-secret-file or AUTH_SECRET_FILE")
	}
	claims := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   subject,
		Issuer:    c.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	if c.Audience != "" {
		claims.Audience = jwt.ClaimStrings{c.Audience}
	}
	if server {
		claims.Role = RoleServer
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.Secret)
}
