package image

import (
	"context"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/image-builder/kmod"
)

// TestToolsFileIsComplete checks that tools.go names every u-root command an
// image may build, so that `go mod tidy` cannot drop what a build needs.
func TestToolsFileIsComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "tools.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	imported := map[string]bool{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		imported[p] = true
	}
	root, err := ModuleRoot(context.Background(), ".")
	if err != nil {
		t.Fatal(err)
	}
	out, err := command(context.Background(), root, []string{"GOOS=linux"}, "go", "list", uroot+"...")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if !imported[p] {
			t.Errorf("tools.go does not import %s (the bare profile builds all of cmds/core)", p)
		}
	}
	for _, p := range Onecloud().Commands {
		if strings.HasPrefix(p, uroot) && !imported[p] {
			t.Errorf("tools.go does not import %s, which the onecloud profile builds", p)
		}
	}
}

func TestProfilesNameTheirOwnCommands(t *testing.T) {
	for _, p := range []Profile{Onecloud(), Bare()} {
		var names []string
		for _, c := range p.Commands {
			names = append(names, commandName(c))
		}
		for _, role := range []string{p.Init, p.Uinit, p.Shell} {
			if !slices.Contains(names, role) && !slices.Contains(names, "*") {
				t.Errorf("profile %s links %q but does not build it", p.Name, role)
			}
		}
		if p.Name == "" || p.OutDir == "" {
			t.Errorf("profile %+v lacks a name or output directory", p)
		}
	}
}

func TestWantedModulesListParses(t *testing.T) {
	names, err := kmod.ParseList([]byte(wantedModules), "modules.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"virtio_net", "e1000", "ext4", "vsock_loopback", "i6300esb"} {
		if !slices.Contains(names, must) {
			t.Errorf("modules.txt lacks %s, which the QEMU proving ground needs", must)
		}
	}
}
