package api

import (
	"context"
	"net/http"
	"time"
)

// OAMApplication is an application made from an OAM manifest
// (core.oam.dev/v1beta1 Application), as /api/oam/applications shows it:
// the manifest as it was submitted and what each component became.
type OAMApplication struct {
	// Name is the manifest's metadata.name.
	Name string `json:"name"`
	// ApplicationID, ApplicationName and ApplicationNamespace are the
	// application it became (/api/application/{id}).
	ApplicationID        string `json:"applicationID"`
	ApplicationName      string `json:"application_name"`
	ApplicationNamespace string `json:"application_namespace"`
	UserID               string `json:"userId"`
	// Manifest is the YAML or JSON text as submitted (the current
	// revision's); Revision numbers it, from 1.
	Manifest   string         `json:"manifest"`
	Revision   int            `json:"revision"`
	Components []OAMComponent `json:"components"`
	// Workflow is where the deployment is: components are deployed step
	// by step, each step after the one before runs.
	Workflow OAMWorkflow `json:"workflow"`
	// Status sums up the components' instances as a service's status does.
	Status       string    `json:"status"`
	StatusDetail string    `json:"status_detail"`
	CreatedAt    time.Time `json:"created_at"`
}

// OAMComponent is a component of an OAM application and the service it
// became.
type OAMComponent struct {
	Name                  string `json:"name"`
	MicroserviceID        string `json:"microserviceID"`
	MicroserviceName      string `json:"microservice_name"`
	MicroserviceNamespace string `json:"microservice_namespace"`
	// Replicas is the number of instances the manifest asks for;
	// Instances the number there are (0 until its workflow step starts);
	// Status and StatusDetail sum them up; RRIP is the service IP.
	Replicas     int    `json:"replicas"`
	Instances    int    `json:"instances"`
	Status       string `json:"status"`
	StatusDetail string `json:"status_detail"`
	RRIP         string `json:"RR_ip"`
	// Replacing is the service this one replaces one instance at a time
	// after an update changed the component; its instances go as the new
	// ones run.
	Replacing string `json:"replacing,omitempty"`
}

// OAMWorkflow is the progress of an OAM application's workflow.
type OAMWorkflow struct {
	// Phase is running, succeeded or failed.
	Phase string `json:"phase"`
	// Step names the step running, or the one that failed.
	Step string `json:"step,omitempty"`
	// Message says why the workflow failed.
	Message string    `json:"message,omitempty"`
	Steps   []OAMStep `json:"steps"`
}

// OAMStep is one workflow step: the components it deploys and its phase.
type OAMStep struct {
	Name       string   `json:"name"`
	Components []string `json:"components"`
	// Phase is waiting, running, succeeded or failed.
	Phase string `json:"phase"`
}

// Phases of a workflow step (and of a workflow: running, succeeded,
// failed).
const (
	OAMStepWaiting   = "waiting"
	OAMStepRunning   = "running"
	OAMStepSucceeded = "succeeded"
	OAMStepFailed    = "failed"
)

// OAMRevision is a manifest applied to an OAM application.
type OAMRevision struct {
	Revision  int       `json:"revision"`
	Manifest  string    `json:"manifest"`
	CreatedAt time.Time `json:"created_at"`
}

// OAMRollback is the body of POST /api/oam/applications/{name}/rollback.
type OAMRollback struct {
	Revision int `json:"revision"`
}

// OAMComponentType is a component type an OAM component may name: a
// built-in type, or a ComponentDefinition the caller registered, whose
// BaseComponent is then the type a component names (every definition of
// one base is an implementation of it; see the README's OAM section).
type OAMComponentType struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Properties  []string `json:"properties"`
	// Kind is OAMKindBuiltin or OAMKindDefinition; the fields below are
	// set for definitions.
	Kind           string   `json:"kind"`
	BaseComponent  string   `json:"base_component,omitempty"`
	Workload       string   `json:"workload,omitempty"`
	Virtualization string   `json:"virtualization,omitempty"`
	Image          string   `json:"image,omitempty"`
	SHA256         string   `json:"sha256,omitempty"`
	Arch           []string `json:"arch,omitempty"`
	// Manifest is the definition as registered.
	Manifest  string     `json:"manifest,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

// Kinds of OAMComponentType.
const (
	OAMKindBuiltin    = "builtin"
	OAMKindDefinition = "definition"
)

// OAMTraitDefinition is a trait an OAM component may carry.
type OAMTraitDefinition struct {
	Name        string   `json:"name"`
	Aliases     []string `json:"aliases,omitempty"`
	Description string   `json:"description"`
	// AppliesTo lists the component types it may be given to.
	AppliesTo  []string `json:"applies_to"`
	Properties []string `json:"properties"`
}

// CreateOAMApplication submits an OAM Application manifest (YAML or JSON
// text): its components become services of a new application and their
// instances are started.
func (c *Client) CreateOAMApplication(ctx context.Context, manifest []byte) (*OAMApplication, error) {
	var out OAMApplication
	if err := c.Do(ctx, http.MethodPost, "/api/oam/applications", manifest, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// OAMApplications lists the caller's OAM applications (an admin's: all).
func (c *Client) OAMApplications(ctx context.Context) ([]OAMApplication, error) {
	return get[[]OAMApplication](ctx, c, "/api/oam/applications")
}

// OAMApplication reads the caller's OAM application of that metadata.name.
func (c *Client) OAMApplication(ctx context.Context, name string) (*OAMApplication, error) {
	return getOne[OAMApplication](ctx, c, "/api/oam/applications/"+esc(name))
}

// UpdateOAMApplication applies a changed manifest to the caller's OAM
// application of its metadata.name, as a new revision.
func (c *Client) UpdateOAMApplication(ctx context.Context, name string, manifest []byte) (*OAMApplication, error) {
	var out OAMApplication
	if err := c.Do(ctx, http.MethodPut, "/api/oam/applications/"+esc(name), manifest, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// OAMRevisions lists the revisions an OAM application keeps, oldest first.
func (c *Client) OAMRevisions(ctx context.Context, name string) ([]OAMRevision, error) {
	return get[[]OAMRevision](ctx, c, "/api/oam/applications/"+esc(name)+"/revisions")
}

// RollbackOAMApplication applies the manifest of an earlier revision again,
// as the next revision.
func (c *Client) RollbackOAMApplication(ctx context.Context, name string, revision int) (*OAMApplication, error) {
	var out OAMApplication
	if err := c.Do(ctx, http.MethodPost, "/api/oam/applications/"+esc(name)+"/rollback", OAMRollback{Revision: revision}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteOAMApplication deletes the caller's OAM application of that name
// with its services and instances.
func (c *Client) DeleteOAMApplication(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/api/oam/applications/"+esc(name), nil, nil)
}

// OAMComponentTypes lists the component types Thicket supports: the
// built-in ones and the caller's ComponentDefinitions.
func (c *Client) OAMComponentTypes(ctx context.Context) ([]OAMComponentType, error) {
	return get[[]OAMComponentType](ctx, c, "/api/oam/componentdefinitions")
}

// ApplyOAMComponentDefinition registers a ComponentDefinition manifest
// (YAML or JSON text), replacing the caller's definition of its name.
func (c *Client) ApplyOAMComponentDefinition(ctx context.Context, manifest []byte) (*OAMComponentType, error) {
	var out OAMComponentType
	if err := c.Do(ctx, http.MethodPost, "/api/oam/componentdefinitions", manifest, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// OAMComponentDefinition reads the caller's ComponentDefinition of that
// name.
func (c *Client) OAMComponentDefinition(ctx context.Context, name string) (*OAMComponentType, error) {
	return getOne[OAMComponentType](ctx, c, "/api/oam/componentdefinitions/"+esc(name))
}

// DeleteOAMComponentDefinition deletes the caller's ComponentDefinition of
// that name; applications already made with it keep running as they are.
func (c *Client) DeleteOAMComponentDefinition(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/api/oam/componentdefinitions/"+esc(name), nil, nil)
}

// OAMTraitDefinitions lists the traits Thicket supports.
func (c *Client) OAMTraitDefinitions(ctx context.Context) ([]OAMTraitDefinition, error) {
	return get[[]OAMTraitDefinition](ctx, c, "/api/oam/traitdefinitions")
}
