package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// caID is the document of the root CA that replicas share.
const caID = "root-ca"

type caRecord struct {
	ID   string `bson:"_id"`
	Cert []byte `bson:"cert"`
	Key  []byte `bson:"key"`
}

// SharedCA returns the root CA (certificate and key, PEM) that every
// replica on this store serves with, made by create at the first start of
// any of them: clusters and clients pin one CA whichever replica answers.
func (s *Store) SharedCA(ctx context.Context, create func() (certPEM, keyPEM []byte, err error)) (certPEM, keyPEM []byte, err error) {
	var rec caRecord
	err = s.secrets.FindOne(ctx, bson.M{"_id": caID}).Decode(&rec)
	if err == nil {
		return rec.Cert, rec.Key, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil, fmt.Errorf("load the root CA: %w", err)
	}
	c, k, err := create()
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.secrets.InsertOne(ctx, caRecord{ID: caID, Cert: c, Key: k}); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return s.SharedCA(ctx, create) // another replica made it first
		}
		return nil, nil, fmt.Errorf("store the root CA: %w", err)
	}
	return c, k, nil
}

// signingKeyID is the document of the download signing key replicas share.
const signingKeyID = "download-signing-key"

// SharedSigningKey returns the key (PEM) that signs the download manifest
// on every replica on this store, made by create at the first start of any
// of them.
func (s *Store) SharedSigningKey(ctx context.Context, create func() (keyPEM []byte, err error)) ([]byte, error) {
	var rec caRecord
	err := s.secrets.FindOne(ctx, bson.M{"_id": signingKeyID}).Decode(&rec)
	if err == nil {
		return rec.Key, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("load the download signing key: %w", err)
	}
	k, err := create()
	if err != nil {
		return nil, err
	}
	if _, err := s.secrets.InsertOne(ctx, caRecord{ID: signingKeyID, Key: k}); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return s.SharedSigningKey(ctx, create) // another replica made it first
		}
		return nil, fmt.Errorf("store the download signing key: %w", err)
	}
	return k, nil
}
