package httpapi

import (
	"context"
	"time"
)

// KeepEvents loads the instances' events the store holds (those an earlier
// run of the root kept), then stores what changed every interval, until
// ctx ends, and once more then.
func (s *Server) KeepEvents(ctx context.Context, every time.Duration) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	m, err := s.store.LoadEvents(lctx)
	cancel()
	if err != nil {
		s.log.Warn("load the instances' events; they start empty", "err", err)
	} else {
		s.events.Load(m)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.storeEvents(fctx)
			cancel()
			return
		case <-t.C:
			s.storeEvents(ctx)
		}
	}
}

// storeEvents writes the events that changed; what fails is tried again.
func (s *Server) storeEvents(ctx context.Context) {
	save, remove := s.events.Changes()
	if err := s.store.SaveEvents(ctx, save); err != nil {
		s.events.Unsaved(save, nil)
		if ctx.Err() == nil {
			s.log.Warn("store the instances' events", "instances", len(save), "err", err)
		}
	}
	if err := s.store.DeleteEvents(ctx, remove); err != nil {
		s.events.Unsaved(nil, remove)
		if ctx.Err() == nil {
			s.log.Warn("forget the events of removed instances", "err", err)
		}
	}
}
