package messageapi_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`^#{1,6} (.+)$`)
)

// markdown returns the lines of a Markdown file outside code blocks.
func markdown(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	code := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			code = !code
			continue
		}
		if !code {
			out = append(out, line)
		}
	}
	return out
}

// slug is the anchor GitHub gives a heading.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ' || r == '-':
			b.WriteRune('-')
		case r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocumentationLinksResolve holds the README, DESIGN.md and docs/ to
// their links: every relative link names a file or folder of the
// repository, and every anchor a heading of its file.
func TestDocumentationLinksResolve(t *testing.T) {
	files, _ := filepath.Glob("docs/*.md")
	files = append(files, "README.md", "DESIGN.md", "loadtest/README.md")
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		a := map[string]bool{}
		for _, line := range markdown(t, path) {
			if m := mdHeading.FindStringSubmatch(line); m != nil {
				a[slug(strings.ReplaceAll(m[1], "`", ""))] = true
			}
		}
		anchors[path] = a
		return a
	}
	links := 0
	for _, file := range files {
		for i, line := range markdown(t, file) {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				links++
				path, anchor, _ := strings.Cut(target, "#")
				resolved := file
				if path != "" {
					resolved = filepath.Join(filepath.Dir(file), path)
					if _, err := os.Stat(resolved); err != nil {
						t.Errorf("%s:%d: %s: no such file", file, i+1, target)
						continue
					}
				}
				if anchor != "" && (!strings.HasSuffix(resolved, ".md") || !anchorsOf(resolved)[anchor]) {
					t.Errorf("%s:%d: %s: no such heading in %s", file, i+1, target, resolved)
				}
			}
		}
	}
	if links < 20 {
		t.Errorf("found only %d relative links; is the parser broken?", links)
	}
}

// TestReadmeIsAFrontPage keeps the README short: the rest is in docs/.
func TestReadmeIsAFrontPage(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > 250 {
		t.Errorf("README.md has %d lines; keep it under 250 and move detail to docs/", n)
	}
}
