"""The only code that talks HTTP to a Hub (through huggingface_hub), and the embedded Hub server."""
