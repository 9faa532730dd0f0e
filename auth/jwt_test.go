package auth

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "test-secret-0123456789abcdef0123456789"

func bearer(token string) []string { return []string{"Bearer " + token} }

// userToken is a valid HS256 token of testSecret for sub.
func userToken(t *testing.T, sub string, edit func(jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	edit(c)
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVerifierRemembersTokensUntilTheyExpire: an accepted token is not
// verified again while it is valid, and is refused once exp plus the
// leeway has passed, remembered or not; a refused one is never
// remembered.
func TestVerifierRemembersTokensUntilTheyExpire(t *testing.T) {
	now := time.Now()
	v := NewVerifier(Config{Secret: []byte(testSecret), Leeway: 10 * time.Second})
	v.now = func() time.Time { return now }
	exp := now.Add(time.Minute)
	token := userToken(t, "alice", func(c jwt.MapClaims) { c["exp"] = exp.Unix() })
	if id, failure := v.Verify(bearer(token)); failure != nil || id.Subject != "alice" {
		t.Fatalf("first verify = %+v, %v", id, failure)
	}
	if len(v.known) != 1 {
		t.Fatalf("%d tokens remembered, want 1", len(v.known))
	}
	now = exp.Add(9 * time.Second) // within the leeway
	if id, failure := v.Verify(bearer(token)); failure != nil || id.Subject != "alice" {
		t.Fatalf("within the leeway = %+v, %v", id, failure)
	}
	now = exp.Add(11 * time.Second)
	if _, failure := v.Verify(bearer(token)); failure == nil || failure.Description != "the token has expired" {
		t.Fatalf("past exp and the leeway = %+v, want expired", failure)
	}
	forged := token[:len(token)-2] + "xx"
	for range 2 {
		if _, failure := v.Verify(bearer(forged)); failure == nil {
			t.Fatal("a forged token was accepted")
		}
	}
	if _, ok := v.known[forged]; ok {
		t.Error("a refused token was remembered")
	}
}
