package mockcfg

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"go.starlark.net/starlark"
)

// The template engine has no limit of its own: nested loops run for
// minutes, and a macro that calls itself overflows the Go stack, which
// ends the process (no recover catches it). The rendering of one config
// gets a budget instead: every control structure run and every item a
// range() makes costs a step, and macros nest only so deep. Mock's own
// templates take a few hundred steps.
const (
	maxJinjaSteps = 200_000
	maxMacroDepth = 64
	// budgetKey holds a rendering's budget in its template context.
	budgetKey = "__thinroot_budget__"

	budgetStepsMsg = "templates take more than"
	budgetDepthMsg = "calls of macro"
)

// budget is what is left to one config's rendering.
type budget struct {
	steps int64
	depth int
}

func newBudget() *budget { return &budget{steps: maxJinjaSteps} }

// spend takes n steps, failing once the budget is used up.
func (b *budget) spend(n int64) error {
	if b == nil {
		return nil
	}
	b.steps -= n
	if b.steps < 0 {
		return fmt.Errorf("%s %d steps: loops or ranges too large", budgetStepsMsg, maxJinjaSteps)
	}
	return nil
}

// budgetOf finds the budget in a template context.
func budgetOf(ctx *exec.Context) *budget {
	if ctx == nil {
		return nil
	}
	v, _ := ctx.Get(budgetKey)
	b, _ := v.(*budget)
	return b
}

// countedStructures are gonja's control structures, each charged to the
// budget when it runs.
var countedStructures = func() *exec.ControlStructureSet {
	set := map[string]parser.ControlStructureParser{}
	for _, name := range []string{"autoescape", "block", "extends", "filter", "for", "from", "if", "import",
		"include", "macro", "raw", "set", "with", "do", "break", "continue", "trans", "call"} {
		p, ok := builtins.ControlStructures.Get(name)
		if !ok {
			continue
		}
		set[name] = func(pp *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
			cs, err := p(pp, args)
			if err != nil {
				return nil, err
			}
			if ecs, ok := cs.(exec.ControlStructure); ok {
				return counted{ecs}, nil
			}
			return cs, nil
		}
	}
	return exec.NewControlStructureSet(set)
}()

// counted runs a control structure after charging a step; a macro it
// defines is wrapped so that calls nest at most maxMacroDepth deep.
type counted struct{ exec.ControlStructure }

func (c counted) Execute(r *exec.Renderer, n *nodes.ControlStructureBlock) error {
	b := budgetOf(r.Environment.Context)
	if err := b.spend(1); err != nil {
		return err
	}
	if err := c.ControlStructure.Execute(r, n); err != nil {
		return err
	}
	if m, ok := c.ControlStructure.(*controlStructures.MacroControlStructure); ok && b != nil {
		if fn, ok := r.Environment.Context.Get(m.Name); ok {
			if macro, ok := fn.(exec.Macro); ok {
				r.Environment.Context.Set(m.Name, depthLimited(b, m.Name, macro))
			}
		}
	}
	return nil
}

// depthLimited wraps a macro so that it fails past maxMacroDepth nested
// calls instead of exhausting the stack.
func depthLimited(b *budget, name string, macro exec.Macro) exec.Macro {
	return func(params *exec.VarArgs) *exec.Value {
		if b.depth >= maxMacroDepth {
			return exec.AsValue(fmt.Errorf("%s %s nested more than %d deep", budgetDepthMsg, name, maxMacroDepth))
		}
		if err := b.spend(1); err != nil {
			return exec.AsValue(err)
		}
		b.depth++
		defer func() { b.depth-- }()
		return macro(params)
	}
}

// A config file's Python runs with a bound on its steps (maxSteps), its
// time and the memory it makes: one step can build a string or list of up
// to a GiB, so a few steps could exhaust the host without this.
var (
	maxFileTime       = 30 * time.Second
	maxFileHeap int64 = 512 << 20
)

// guardThread cancels th when the file runs longer than maxFileTime or the
// heap grows by more than maxFileHeap while it runs; it returns the
// function that stops watching.
func guardThread(th *starlark.Thread) func() {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() int64 {
		metrics.Read(sample)
		return int64(sample[0].Value.Uint64())
	}
	base := heap()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(maxFileTime)
		for {
			select {
			case <-done:
				return
			case <-deadline:
				th.Cancel(fmt.Sprintf("the config ran for more than %v", maxFileTime))
				return
			case <-tick.C:
				if heap()-base <= maxFileHeap {
					continue
				}
				// The sample counts garbage, and the heap is the whole
				// process's: collect before blaming the config.
				runtime.GC()
				if grew := heap() - base; grew > maxFileHeap {
					th.Cancel(fmt.Sprintf("the config uses more than %d MiB of memory", maxFileHeap>>20))
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
