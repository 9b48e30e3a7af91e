"""Small shared helpers with no dependency on the rest of dts_planner (the lowest layer).

``images``: PSNR, and the one GIF / PNG strip / labelled grid writer of frame sequences.
``device``: torch device selection (a clear error, or CPU fallback, when CUDA is absent).
"""
