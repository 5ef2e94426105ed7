package kmod

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ParseList reads a wanted-modules list: one module name per line, '#'
// starts a comment, blank lines are ignored. file names the list in errors.
// A name listed twice is an error, since it usually means a merge went wrong.
func ParseList(data []byte, file string) ([]string, error) {
	var names []string
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if !nameRE.MatchString(text) {
			return nil, fmt.Errorf("%s:%d: %q is not a module name (one name per line, letters, digits, '_' and '-')", file, line, text)
		}
		if first, ok := seen[Normalize(text)]; ok {
			return nil, fmt.Errorf("%s:%d: module %s is already listed on line %d", file, line, text, first)
		}
		seen[Normalize(text)] = line
		names = append(names, text)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s lists no modules", file)
	}
	return names, sc.Err()
}
