package api

import (
	"context"
	"net/http"
)

// Rollout is an edit of a service being rolled out: its outdated
// instances (Instance.Outdated) are replaced by instances of the edited
// spec one at a time, each new one RUNNING before an old one stops.
type Rollout struct {
	// Replicas is how many instances the service has when it is done.
	Replicas int `json:"replicas" bson:"replicas"`
	// Outdated counts the instances still to replace.
	Outdated int `json:"outdated" bson:"outdated"`
	// Message says why the rollout stopped (a new instance FAILED: the old
	// instances keep running); empty while it goes on.
	Message string `json:"message,omitempty" bson:"message,omitempty"`
}

// UpdateService edits a stored service: sla is the same document as
// CreateServices takes (one application, its applicationID, one
// microservice), the service's new definition. What does not change the
// instances' spec restarts nothing; otherwise the instances are replaced
// one at a time (Service.Rollout). It returns the service as stored.
func (c *Client) UpdateService(ctx context.Context, id string, sla any) (*Service, error) {
	var out Service
	if err := c.Do(ctx, http.MethodPut, "/api/service/"+esc(id), sla, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
