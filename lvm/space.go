package lvm

import (
	"context"
	"errors"

	"github.com/thinroot/thinroot/lvm/backend"
)

// ensureSpace is checkSpace after growing the pool, when the config asks
// for autoextend, the backend can grow pools and the pool is over its warn
// threshold. A volume group without room is logged and the thresholds
// apply as they are.
func (m *Manager) ensureSpace(ctx context.Context, c *Config, be backend.Backend, r *backend.PoolReport) error {
	if r != nil && c.AutoExtendStep > 0 {
		warn := r.WarnPercent
		if warn == 0 {
			warn = m.opts.WarnPercent
		}
		if ext, ok := be.(backend.Extender); ok && (r.DataPercent > warn || r.MetadataPercent > warn) {
			m.log.Info("pool over its warn threshold: extending it", "pool", r.Name,
				"data_percent", r.DataPercent, "metadata_percent", r.MetadataPercent, "step", c.AutoExtendStep)
			err := ext.Extend(context.WithoutCancel(ctx), r.Name, c.AutoExtendStep)
			switch {
			case err == nil:
				if nr, err := m.rescan(ctx, r.Name); err == nil && nr != nil {
					m.log.Info("pool extended", "pool", r.Name, "size_bytes", nr.SizeBytes, "data_percent", nr.DataPercent)
					r = nr
				}
			case errors.Is(err, ErrNoRoom):
				m.log.Warn("cannot extend the pool: its volume group has no room", "pool", r.Name, "err", err)
			default:
				m.log.Error("extend the pool", "pool", r.Name, "err", err)
			}
		}
	}
	return m.checkSpace(c, r)
}

// checkSpace applies the thresholds before a volume is made: over the
// refuse threshold it fails with a PoolFullError (or only warns when the
// config says check_size = False); over the warn threshold it warns.
func (m *Manager) checkSpace(c *Config, r *backend.PoolReport) error {
	if r == nil {
		return nil
	}
	warn, refuse := r.WarnPercent, r.RefusePercent
	if warn == 0 {
		warn = m.opts.WarnPercent
	}
	if refuse == 0 {
		refuse = m.opts.RefusePercent
	}
	over := r.DataPercent > refuse || r.MetadataPercent > refuse
	if r.Health != "" || over {
		err := &PoolFullError{Pool: r.Name, DataPercent: r.DataPercent, MetadataPercent: r.MetadataPercent,
			RefusePercent: refuse, Reason: r.Health}
		if c.CheckSize || r.Health != "" {
			m.log.Warn("refusing a new volume", "pool", r.Name, "reason", err.Error())
			return err
		}
		m.log.Warn("pool over the refuse threshold; check_size is off, going on", "pool", r.Name, "detail", err.Error())
		return nil
	}
	if r.DataPercent > warn || r.MetadataPercent > warn {
		m.log.Warn("thin pool is nearly full; consider growing it", "pool", r.Name,
			"data_percent", r.DataPercent, "metadata_percent", r.MetadataPercent)
	}
	return nil
}
