"""Models and images to and from other tools: bioimage.io packages for Fiji (deepImageJ) and ilastik.

Above the models and inference layers (it uses both); nothing in the core imports it.
"""
