// Package auth verifies the bearer tokens (JWT) that authenticate API
// requests: HS256 with a shared secret, or RS256 and EdDSA with the public
// keys of a JWKS file; it also mints development tokens. What a verified
// identity may do is the HTTP layer's rule (package httpapi).
package auth
