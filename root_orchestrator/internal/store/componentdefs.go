package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// componentDefsCollection holds users' OAM ComponentDefinitions.
const componentDefsCollection = "component_definitions"

// MaxComponentDefinitions bounds the definitions one user keeps.
const MaxComponentDefinitions = 200

// ComponentDefinition is an OAM ComponentDefinition a user registered: the
// manifest as written, owned by the user (only their applications use it).
type ComponentDefinition struct {
	ID        string    `bson:"_id"` // owner + "/" + name
	Owner     string    `bson:"owner"`
	Name      string    `bson:"name"`
	Base      string    `bson:"base_component"`
	Manifest  string    `bson:"manifest"`
	CreatedAt time.Time `bson:"created_at"`
	UpdatedAt time.Time `bson:"updated_at"`
}

func (s *Store) componentDefs() *mongo.Collection { return s.db.Collection(componentDefsCollection) }

// PutComponentDefinition stores a definition, replacing the owner's
// definition of that name (keeping when it was created, and so its place
// in the preference order); it reports whether the definition is new. A
// new one beyond MaxComponentDefinitions is a ConflictError.
func (s *Store) PutComponentDefinition(ctx context.Context, d ComponentDefinition) (bool, error) {
	d.ID = d.Owner + "/" + d.Name
	now := s.now()
	d.CreatedAt, d.UpdatedAt = now, now
	var old ComponentDefinition
	err := s.componentDefs().FindOne(ctx, bson.M{"_id": d.ID}).Decode(&old)
	created := err != nil
	switch {
	case err == nil:
		d.CreatedAt = old.CreatedAt
	case notFound(err) == ErrNotFound:
		n, err := s.componentDefs().CountDocuments(ctx, bson.M{"owner": d.Owner})
		if err != nil {
			return false, fmt.Errorf("count component definitions: %w", err)
		}
		if n >= MaxComponentDefinitions {
			return false, &ConflictError{Message: fmt.Sprintf("you have %d component definitions, the most a user may keep: delete one first", n)}
		}
	default:
		return false, fmt.Errorf("read component definition: %w", err)
	}
	if _, err := s.componentDefs().ReplaceOne(ctx, bson.M{"_id": d.ID}, d, options.Replace().SetUpsert(true)); err != nil {
		return false, fmt.Errorf("store component definition: %w", err)
	}
	return created, nil
}

// ComponentDefinitions lists the owner's definitions in the order they were
// first registered.
func (s *Store) ComponentDefinitions(ctx context.Context, owner string) ([]ComponentDefinition, error) {
	cur, err := s.componentDefs().Find(ctx, bson.M{"owner": owner})
	if err != nil {
		return nil, fmt.Errorf("list component definitions: %w", err)
	}
	var out []ComponentDefinition
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list component definitions: %w", err)
	}
	slices.SortStableFunc(out, func(a, b ComponentDefinition) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// DeleteComponentDefinition deletes the owner's definition of that name;
// ErrNotFound when there is none.
func (s *Store) DeleteComponentDefinition(ctx context.Context, owner, name string) error {
	res, err := s.componentDefs().DeleteOne(ctx, bson.M{"_id": owner + "/" + name})
	if err != nil {
		return fmt.Errorf("delete component definition: %w", err)
	}
	if res.DeletedCount == 0 {
		return ErrNotFound
	}
	return nil
}
