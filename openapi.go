package messageapi

import (
	"bytes"
	_ "embed"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the API's OpenAPI document (openapi.yaml), as built into
// the binary. The API serves these bytes and the tests validate every
// exchange against them, so the document and the server cannot drift
// apart unnoticed.
func OpenAPI() []byte {
	return bytes.Clone(openAPI)
}
