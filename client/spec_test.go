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

// TestErrorCodesStayOpen holds openapi.yaml to its promise that new error
// codes may appear: a generated client that decodes an enum (ogen does)
// would refuse an error with a code it was not built with. The codes an
// error response carries today are listed as x-codes instead, which the
// tests' contract checker enforces.
func TestErrorCodesStayOpen(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal(messageapi.OpenAPI(), &root); err != nil {
		t.Fatal(err)
	}
	pinned := 0
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, value := n.Content[i].Value, n.Content[i+1]
				if key == "code" && value.Kind == yaml.MappingNode {
					for j := 0; j+1 < len(value.Content); j += 2 {
						switch value.Content[j].Value {
						case "enum", "const":
							t.Errorf("%s/code is closed by %s; list its codes as x-codes", path, value.Content[j].Value)
						case "x-codes":
							pinned++
						}
					}
				}
				walk(value, path+"/"+key)
			}
			return
		}
		for _, c := range n.Content {
			walk(c, path)
		}
	}
	walk(&root, "")
	if pinned == 0 {
		t.Error("no error response lists its codes as x-codes")
	}
}
