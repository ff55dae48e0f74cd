package faults

import "strings"

// What "the final state is one of the serial outcomes" means here. A round
// runs a few operations at once from different processes; each reports
// success or failure. The round is correct when some order of the
// operations, run one at a time through the serial model (Apply), gives
// exactly the picture found afterwards, where
//   - an operation that reported success took effect, at its place in the
//     order, and its precondition held there;
//   - an operation that reported failure took no effect at all, or one of
//     the partial effects it is known to be able to leave (Maybe): a build
//     that failed after its init, a rollback-to that failed after
//     switching the record.
// Refusals for any other reason (a stale view, a busy lock) are allowed:
// they must simply have changed nothing.

// Done is one operation of a round with what it reported.
type Done struct {
	Actor string
	Op    Op
	OK    bool
	Err   string
	// Maybe are effects a failed operation may have left.
	Maybe []Op
}

func (d Done) String() string {
	s := d.Actor + ": " + d.Op.String()
	if d.OK {
		return s + " -> ok"
	}
	return s + " -> failed: " + strings.TrimSpace(d.Err)
}

// Explain looks for a serial order of done that turns before into got. It
// returns that order (as text) and whether there is one.
func Explain(before Picture, done []Done, got Picture) ([]string, bool) {
	want := got.String()
	used := make([]bool, len(done))
	var order []string
	var try func(p Picture, n int) bool
	try = func(p Picture, n int) bool {
		if n == len(done) {
			return p.String() == want
		}
		for i, d := range done {
			if used[i] {
				continue
			}
			used[i] = true
			if d.OK {
				if q, ok := Apply(p, d.Op); ok {
					order = append(order, d.String())
					if try(q, n+1) {
						return true
					}
					order = order[:len(order)-1]
				}
			} else {
				order = append(order, d.String()+" (no effect)")
				if try(p, n+1) {
					return true
				}
				order = order[:len(order)-1]
				for _, m := range d.Maybe {
					if q, ok := Apply(p, m); ok {
						order = append(order, d.String()+" (left: "+m.String()+")")
						if try(q, n+1) {
							return true
						}
						order = order[:len(order)-1]
					}
				}
			}
			used[i] = false
		}
		return false
	}
	ok := try(before, 0)
	return order, ok
}
