"""Reading, inspecting, name-mapping and partially restoring checkpoints; known pretrained checkpoints."""
