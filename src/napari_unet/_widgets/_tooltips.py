"""What every control does and when to change it, in plain words (shown as tooltips).

Kept in one place so the three dock widgets say the same thing about the same option and
their modules stay short.
"""

# shared
IMAGE = ("The image layer to segment. Grey, colour (RGB) and Z or time stacks all work; a stack is done "
         "plane by plane, starting with the plane on screen.")
MODEL = ("The trained network that finds the cells. 'nuclei' comes with the plugin; models you fine-tune in "
         "this session are added here; 'model file…' opens a model saved earlier.")
MODEL_FILE = "A model file saved with 'Save model' or by the napari-unet command (.safetensors)."
DIAMETER = ("Typical diameter of your cells in pixels; the image is scaled so the cells have the size the "
            "model knows. Leave 0 to measure it on each image. Set it by hand when cells come out cut in "
            "pieces (value too small) or merged (value too large).")
ESTIMATE = "Measure the cell diameter on the chosen image now and put it in the field (a few seconds)."
POLARITY = ("Are your cells brighter or darker than the background? 'detect' decides from the image. Choose "
            "by hand when the result looks inverted, e.g. the background found as one big cell.")
SPLIT = ("How cells that touch are separated. 'At the neck': for round cells and nuclei, also cuts where the "
         "outline narrows between two cells. 'On predicted boundary only': for rods, filaments or irregular "
         "cells that would otherwise be cut in pieces.")
ADVANCED = ("How cells are cut apart, and settings for speed, memory and hardware. The defaults suit almost "
            "everyone.")
THRESHOLD = ("How sure the network must be that a pixel is inside a cell for it to seed one. 0 uses the model's "
             "own value (0.3 for 'nuclei'). Raise it (e.g. 0.5) when touching cells come out merged, lower it "
             "when faint cells are missed.")
SPLIT_DEPTH = ("How much narrower (pixels, at the model's scale) the neck between two touching cells must be than "
               "the smaller cell for them to be split ('at the neck' only). 0 uses the model's own value (2 for "
               "'nuclei'). Lower it when touching cells come out merged, raise it when cells are cut in pieces.")
DEVICE = ("Where the network runs. 'auto' uses a graphics card (NVIDIA CUDA or Apple MPS) when there is one, "
          "else the processor. Choose 'cpu' when the graphics card runs out of memory.")
PRECISION = ("Number format of the calculation. 'auto' uses the faster half precision (bf16) on graphics "
             "cards made for it and full precision (fp32) elsewhere. Choose fp32 if results differ from "
             "another computer; fp16 only helps on older graphics cards.")
CANCEL = "Stop at the next tile, plane or training step. What is finished stays."
PROGRESS = "How much is done: tiles (Segment), planes (Batch segment) or training steps (fine-tune)."
STATUS = "The last message: progress, results and problems with the inputs. Select the text to copy it."

# Segment
SEGMENT_RUN = ("Segment the chosen image. A '<image> labels' layer appears and fills in tile by tile; it ends "
               "exactly as napari_unet.segment() would.")
TILE_SIZE = ("The image is processed in square pieces (tiles) of this many pixels; the result does not depend "
             "on it. 0 = automatic (512 on a processor, 1024 on a graphics card). Lower it when the computer "
             "runs out of memory; smaller tiles also show up sooner.")
PRUNE_LEVEL = ("Only for UNet++ models trained with deep supervision (greyed out otherwise). 'accurate' uses "
               "the whole network; L1, L2, … use a smaller part of it: faster, less accurate.")
FLIPS = ("Also run the network on the image mirrored left-right, top-bottom and both, and average the four "
         "answers: smoother outlines and fewer wrongly split or missed cells, for four times the time.")
PROBABILITIES = ("Also add two image layers with how sure the network is (0 to 1) that each pixel is inside a "
                 "cell or on a cell's boundary: useful to see why cells were merged or missed.")

# Batch segment
IMAGES = ("The image layers to segment; Ctrl/Cmd-click to select several. Select none to take every image "
          "layer (layers this plugin made, such as probabilities, are skipped).")
SAVE = ("Also write each result as '<layer name>_labels.tif'. Without a folder, each result goes next to the "
        "image file it was read from; for images not read from a file you are asked for a folder.")
FOLDER = "Where the TIFF files go. Leave empty to save next to each image's own file."
BATCH_RUN = "Segment the chosen images one after another into '<name> labels' layers."

# Annotate and fine-tune
TRAIN_IMAGE = ("The image you annotate and train on. Switching it picks that image's own annotation and "
               "regions layers.")
NEW_ANNOTATION = ("Add an empty labels layer over the image, ready to paint. A stroke that starts on empty "
                  "ground paints a new cell with its own number, so there is no need to pick a label or press "
                  "M; a stroke that starts inside a cell extends that cell.")
ANNOTATION = "The labels layer with your painted cells (0 = background, each cell its own number)."
NEW_REGIONS = ("Add a layer for rectangles around the areas where you painted every cell. Outside the "
               "rectangles nothing is learned. Use it when you painted only some of the cells.")
REGIONS = ("Where your annotation is complete. '(none)': the whole image counts and every unpainted pixel is "
           "learned as background, so either paint every cell or draw rectangles around finished areas.")
NO_REGIONS = "(none: unpainted = background)"
WEIGHTS = ("Add an image of how much each pixel counts in training: bright in the narrow gaps between "
           "touching cells, zero where nothing is learned.")
AUGMENTATION = ("Open a small window with four randomly distorted copies of your annotated image, as the "
                "network sees them in training. Nothing is added to the viewer.")
START_FROM = "The model to improve: usually 'nuclei', or a model you fine-tuned before."
ALL_PAIRS = "Train on every image you made an annotation layer for here, not only on the chosen one."
LIVE_PREVIEW = ("Every few steps, show what the model in training finds in the visible part of the image (a "
                "'fine-tune preview' layer).")
MODEL_NAME = "Name of the new model in the model lists of Segment and Batch segment."
ITERATIONS = ("At most this many training steps (training stops earlier when the time is up). Watch the loss "
              "curve: once it stops going down, more steps do not help.")
MINUTES = ("How long to train. 2 minutes on a laptop processor usually suffice for a dozen corrected cells; "
           "the learning rate is scheduled over this time.")
FROM_SEGMENTATION = ("Correct instead of paint: copy the cells of this image's segmentation (from Segment) into a "
                     "new annotation layer — only those inside the training regions, if you drew some. Then fix "
                     "the mistakes (delete, merge, split, repaint) and fine-tune. The segmentation stays as it is.")
SUGGEST = ("Annotate here next: show where the model disagrees with itself (its predictions of the image and "
           "of its mirror images differ) and draw the most uncertain areas as training regions, best first.")
LEARNING_RATE = ("How big a correction each training step makes. 1e-3 (= 0.001) suits most fine-tuning; try "
                 "1e-4 when the loss jumps up and down or the run stops as 'diverged'. Type e.g. 5e-5 or "
                 "0.00005.")
ANCHOR = ("How strongly training pulls the model back toward the one you start from. It keeps what the "
          "pretrained model knows about cells in general while it learns your few cells; 0 lets it drift freely "
          "(it may then do worse on images unlike the annotated one).")
FINETUNE_RUN = "Train on your annotations. The new model is added to the model lists of the other widgets."
LOSS_PLOT = ("Training error at each step (grey) and its running mean (orange); validation error in blue when "
             "held-out images are scored. It should go down and flatten out.")
SAVE_PATH = "File to save the fine-tuned model to (.safetensors); open it later with 'model file…'."
SAVE_MODEL = "Save the last fine-tuned model to the file above (asks before replacing a file)."
KEEP_WORSE = ("A quarter of your annotated cells (when there are 6 or more) is held out of training to check that "
              "fine-tuning helps; if the tuned model segments them worse than the starting model, the starting "
              "model is kept. Tick this to keep the fine-tuned model anyway.")
