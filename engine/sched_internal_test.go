package engine

import "testing"

func TestPartialStop(t *testing.T) {
	for _, tc := range []struct {
		text  string
		stops []string
		want  int
	}{
		{"hello", []string{"END"}, 0},
		{"hello E", []string{"END"}, 1},
		{"hello EN", []string{"END"}, 2},
		{"hello EN", []string{"END", "N"}, 2},
		{"abc", []string{"c"}, 0}, // a whole stop is the caller's to find; a proper prefix only
		{"x\n", []string{"\n\n", "x"}, 1},
		{"", []string{"END"}, 0},
	} {
		if got := partialStop([]byte(tc.text), tc.stops); got != tc.want {
			t.Errorf("partialStop(%q, %q): got %d, want %d", tc.text, tc.stops, got, tc.want)
		}
	}
}

func TestRuneBoundary(t *testing.T) {
	euro := "\u20ac" // 3 bytes
	for _, tc := range []struct {
		text     string
		from     int
		end, out int
	}{
		{"abc", 0, 3, 3},
		{"ab" + euro, 0, 5, 5},
		{"ab" + euro[:2], 0, 4, 2}, // cut inside the euro sign: hold it back
		{"ab" + euro[:1], 0, 3, 2},
		{"ab" + euro[:2], 3, 4, 4}, // the character began before from: nothing to hold back
		{euro + euro[:1], 0, 4, 3},
	} {
		if got := runeBoundary([]byte(tc.text), tc.from, tc.end); got != tc.out {
			t.Errorf("runeBoundary(%q, %d, %d): got %d, want %d", tc.text, tc.from, tc.end, got, tc.out)
		}
	}
}

func TestIndexFrom(t *testing.T) {
	for _, tc := range []struct {
		text, sub string
		from, out int
	}{
		{"abcabc", "bc", 0, 1},
		{"abcabc", "bc", 2, 4},
		{"abc", "abcd", 0, -1},
		{"abc", "c", 3, -1},
	} {
		if got := indexFrom([]byte(tc.text), tc.sub, tc.from); got != tc.out {
			t.Errorf("indexFrom(%q, %q, %d): got %d, want %d", tc.text, tc.sub, tc.from, got, tc.out)
		}
	}
}
