// Command tokens prints one bearer token a line, HS256-signed with a
// secret, for each user id read from standard input: the readers of a
// benchmark with authentication on, each with a token of their own.
//
//	go run ./loadtest/tokens -secret "$AUTH_SECRET" <users.txt >tokens.txt
//
// The tokens are what `api token -sub <user>` mints: sub, iat and exp.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	secret := flag.String("secret", "", "HS256 secret, at least 32 bytes (the API's -auth-secret)")
	ttl := flag.Duration("ttl", time.Hour, "how long each token is valid")
	flag.Parse()
	if len(*secret) < 32 {
		fmt.Fprintln(os.Stderr, "tokens: -secret must be at least 32 bytes")
		os.Exit(2)
	}
	now := time.Now()
	in, out := bufio.NewScanner(os.Stdin), bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		user := strings.TrimSpace(in.Text())
		if user == "" {
			continue
		}
		token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
			Subject: user, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(*ttl)),
		}).SignedString([]byte(*secret))
		if err != nil {
			fmt.Fprintln(os.Stderr, "tokens:", err)
			os.Exit(1)
		}
		fmt.Fprintln(out, token)
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "tokens:", err)
		os.Exit(1)
	}
}
