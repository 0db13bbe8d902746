"""Training: annotations and their weight maps, augmentation, patches, loss and schedule,
the fine-tuning loop, and the pretraining recipe of the shipped model."""
