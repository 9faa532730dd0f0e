package client_test

import (
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v4"

	"messageapi"
)

// document is the part of openapi.yaml that code generators name things
// after.
type document struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components map[string]map[string]yaml.Node `yaml:"components"`
}

func loadDocument(t *testing.T) document {
	t.Helper()
	var doc document
	if err := yaml.Unmarshal(messageapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Paths) == 0 || len(doc.Components) == 0 {
		t.Fatal("openapi.yaml has no paths or no components")
	}
	return doc
}

// goName is the identifier a generator makes of a name: oapi-codegen,
// ogen and openapi-typescript drop what is not a letter or digit and
// change case, so names that differ only there clash.
func goName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// TestComponentNamesAreUniqueAcrossSections holds openapi.yaml to what
// oapi-codegen needs: it types schemas, parameters, responses, headers
// and request bodies in one namespace, and refuses a document where two
// of them share a name ("duplicate typename ... can't auto-rename").
func TestComponentNamesAreUniqueAcrossSections(t *testing.T) {
	doc := loadDocument(t)
	seen := map[string]string{}
	for section, components := range doc.Components {
		if section == "securitySchemes" {
			continue // not a type
		}
		for name := range components {
			key := goName(name)
			if other, ok := seen[key]; ok {
				t.Errorf("components/%s/%s and %s make the same type name", section, name, other)
			}
			seen[key] = "components/" + section + "/" + name
		}
	}
}

// TestOperationsAreNamedOnce holds openapi.yaml to what every generator
// names methods after: each operation has an operationId, no two share
// one, and none clashes with a component's type.
func TestOperationsAreNamedOnce(t *testing.T) {
	doc := loadDocument(t)
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}
	seen := map[string]string{}
	for _, components := range doc.Components {
		for name := range components {
			seen[goName(name)] = "a component"
		}
	}
	for path, item := range doc.Paths {
		for method, node := range item {
			if !methods[method] {
				continue
			}
			var op struct {
				OperationID string `yaml:"operationId"`
			}
			if err := node.Decode(&op); err != nil {
				t.Fatal(err)
			}
			where := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
				continue
			}
			if other, ok := seen[goName(op.OperationID)]; ok {
				t.Errorf("%s: operationId %s clashes with %s", where, op.OperationID, other)
			}
			seen[goName(op.OperationID)] = where
		}
	}
}
