package api

import (
	"context"
	"net/http"
)

// Collaborative workloads: a service's job list, shared among its
// instances so that each job has exactly one owner (see the README,
// "Collaborative workloads").

// JobList is the body of PUT /api/service/{id}/jobs (the new list) and
// POST /api/service/{id}/jobs (jobs to add): the jobs, or the URL of a
// list (one job per line) the root fetches once.
type JobList struct {
	// Jobs are the jobs (null when URL is given).
	Jobs []string `json:"jobs"`
	URL  string   `json:"url,omitempty"`
}

// ServiceJobs is a service's job list and who owns which job. Every call
// on /api/service/{id}/jobs answers with it.
type ServiceJobs struct {
	ServiceID string `json:"service_id"`
	// Jobs is the list, in the order it was given.
	Jobs []string `json:"jobs"`
	// Version counts the changes of the list (0: never had one).
	Version int64 `json:"version"`
	// LeaseS is how long, in seconds, an instance cut off from its cluster
	// keeps its jobs, and how long the cluster waits before it gives them
	// to another instance.
	LeaseS int `json:"lease_s"`
	// AssignmentVersion is the newest grant version an instance applied
	// (the cluster's counter, which grows with every change of any
	// instance's set).
	AssignmentVersion int64 `json:"assignment_version"`
	// Assignment maps each job of the list that an instance reports it
	// owns to that instance's number.
	Assignment map[string]int `json:"assignment"`
	// Instances are the service's instances with the set each applied.
	Instances []JobHolder `json:"instances"`
	// Unowned lists the jobs of the list no instance reports it owns (no
	// instance runs, or the job is moving between instances), in list order.
	Unowned []string `json:"unowned"`
}

// JobHolder is one instance's share of the jobs as its cluster last
// reported it.
type JobHolder struct {
	InstanceNumber int    `json:"instance_number"`
	Status         string `json:"status"`
	// Version is the grant version the instance applied (0: none yet).
	Version int64 `json:"version"`
	// Jobs are the jobs it owns at Version, sorted.
	Jobs []string `json:"jobs"`
}

func jobsPath(serviceID string) string { return "/api/service/" + esc(serviceID) + "/jobs" }

// Jobs reads a service's job list and its assignment.
func (c *Client) Jobs(ctx context.Context, serviceID string) (*ServiceJobs, error) {
	return getOne[ServiceJobs](ctx, c, jobsPath(serviceID))
}

// SetJobs replaces a service's job list (an empty list removes every job).
func (c *Client) SetJobs(ctx context.Context, serviceID string, jobs []string) (*ServiceJobs, error) {
	return c.jobsCall(ctx, http.MethodPut, jobsPath(serviceID), JobList{Jobs: nonNilJobs(jobs)})
}

// AddJobs appends jobs to a service's list; a job already in it is an
// error and adds nothing.
func (c *Client) AddJobs(ctx context.Context, serviceID string, jobs []string) (*ServiceJobs, error) {
	return c.jobsCall(ctx, http.MethodPost, jobsPath(serviceID), JobList{Jobs: nonNilJobs(jobs)})
}

// SetJobsFromURL replaces a service's job list by the list at url, which
// the root fetches (one job per line; public addresses unless the root
// allows others).
func (c *Client) SetJobsFromURL(ctx context.Context, serviceID, url string) (*ServiceJobs, error) {
	return c.jobsCall(ctx, http.MethodPut, jobsPath(serviceID), JobList{URL: url})
}

// AddJobsFromURL appends the jobs of the list at url to a service's list.
func (c *Client) AddJobsFromURL(ctx context.Context, serviceID, url string) (*ServiceJobs, error) {
	return c.jobsCall(ctx, http.MethodPost, jobsPath(serviceID), JobList{URL: url})
}

// RemoveJob takes one job from a service's list.
func (c *Client) RemoveJob(ctx context.Context, serviceID, job string) (*ServiceJobs, error) {
	return c.jobsCall(ctx, http.MethodDelete, jobsPath(serviceID)+"/"+esc(job), nil)
}

func (c *Client) jobsCall(ctx context.Context, method, path string, body any) (*ServiceJobs, error) {
	var out ServiceJobs
	if err := c.Do(ctx, method, path, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func nonNilJobs(jobs []string) []string {
	if jobs == nil {
		return []string{}
	}
	return jobs
}
