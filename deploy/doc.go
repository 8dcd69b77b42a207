// Package deploy holds no code: its tests keep the deployment files of the
// repository true to the binaries — docker-compose.yml and
// deploy/docker/Dockerfile, the SLA examples in sla_examples/, and the
// configuration reference in README.md.
package deploy
