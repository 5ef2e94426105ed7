package cells

import "testing"

func TestWidth(t *testing.T) {
	for _, tc := range []struct {
		r    rune
		want int
	}{
		{'a', 1}, {'状', 2}, {'态', 2}, {'：', 2}, {'，', 2}, {'▀', 1}, {'─', 1}, {'\n', 0}, {0x301, 0},
	} {
		if got := Width(tc.r); got != tc.want {
			t.Errorf("Width(%q) = %d, want %d", tc.r, got, tc.want)
		}
	}
	if got := StringWidth("状态 ok"); got != 7 {
		t.Errorf("StringWidth = %d, want 7", got)
	}
}

func TestPut(t *testing.T) {
	f := New(6, 2)
	if x := f.Put(0, 0, "状态ok", White, Black, false); x != 6 {
		t.Errorf("Put returned column %d, want 6", x)
	}
	if c := f.At(0, 0); c.R != '状' || !c.Wide {
		t.Errorf("cell 0 = %+v", c)
	}
	if c := f.At(1, 0); !c.Continuation {
		t.Errorf("cell 1 = %+v, want a continuation", c)
	}
	// A wide rune that does not fit the last cell is left out.
	f.Put(4, 1, "ab状", White, Black, false)
	f.Put(0, 1, "xyzw", White, Black, false)
	if got, want := f.Text(), "状态ok\nxyzwab\n"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	g := New(5, 1)
	g.Put(3, 0, "a状", White, Black, false)
	if got := g.Text(); got != "   a\n" {
		t.Errorf("a wide rune at the edge: %q", got)
	}
}

// Writing over half of a Chinese character blanks the other half.
func TestOverwriteHalf(t *testing.T) {
	f := New(6, 1)
	f.Put(0, 0, "状态", White, Black, false)
	f.Put(1, 0, "x", White, Black, false) // over the continuation of 状
	if got := f.Text(); got != " x态\n" {
		t.Errorf("over a continuation: %q", got)
	}
	f.Put(2, 0, "y", White, Black, false) // over the head of 态
	if got := f.Text(); got != " xy\n" {
		t.Errorf("over a head: %q", got)
	}
	for i, c := range f.Cells {
		if c.Continuation && (i == 0 || !f.Cells[i-1].Wide) {
			t.Errorf("cell %d is a continuation of nothing", i)
		}
	}
}
