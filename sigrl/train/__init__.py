"""Training loops: contrastive CLIP pretraining on caption manifests, zero-shot evaluation."""
