"""The app's logic: plain functions that `app.py` wires to a Gradio UI (and tests call directly).

The flow: `uploads` reads a before land-cover map (a real example with its aerial image, a procedural example,
or an upload whose class set is detected from its colours, checked before it is decoded), optionally with its
real image, into a `session`; `editing` turns painted brush strokes and/or
random change events into an after map; `generation` makes the before image (when there is none) and the
after image(s) with the dataset generator's builder, and predicts the change with a change-detection model,
zero-shot, scored against the label; `package` zips the pairs in the layout of `changeanywhere generate`.
`models` loads what all this runs on; `files` writes the images the app serves, one file per request. Errors
are `ChangeAnywhereError`s whose text is shown as it is.
"""

from ..runtime import CD_BUILDING_MODEL_ENV, CD_MODEL_ENV, MODEL_ENV
from .editing import (
    describe_change,
    describe_event,
    make_after_map,
    nearest_class,
    painted_edits,
    require_change,
    session_change,
)
from .files import OUTPUT_FILE_MAX_AGE_S, OutputFiles
from .generation import (
    DEFAULT_CONTENT,
    DEFAULT_CONTENT_SCALE,
    DEFAULT_DRIFT,
    DEFAULT_NONCHANGE,
    MAX_VARIANTS,
    Generation,
    Sample,
    generate_variants,
    metrics_markdown,
    pair_metrics,
    prediction_overlay,
    zero_shot_prediction,
)
from .models import COUNTS, Models, load_models, status_markdown
from .package import ZIP_MAX_AGE_S, write_sample_zip
from .session import Session, start_session
from .uploads import (
    AUTO,
    MAX_SIDE,
    default_brush,
    detect_class_set,
    display_class_set,
    editor_value,
    example_names,
    fit_to_model,
    legend_html,
    load_example,
    md_escape,
    read_before_image,
    read_uploaded_map,
    swatch_names_css,
)
from .warmup import warm_up

__all__ = [
    "AUTO",
    "CD_BUILDING_MODEL_ENV",
    "CD_MODEL_ENV",
    "DEFAULT_CONTENT_SCALE",
    "DEFAULT_CONTENT",
    "DEFAULT_DRIFT",
    "DEFAULT_NONCHANGE",
    "MAX_SIDE",
    "MAX_VARIANTS",
    "MODEL_ENV",
    "OUTPUT_FILE_MAX_AGE_S",
    "ZIP_MAX_AGE_S",
    "Generation",
    "COUNTS",
    "Models",
    "OutputFiles",
    "Sample",
    "Session",
    "describe_change",
    "default_brush",
    "describe_event",
    "detect_class_set",
    "display_class_set",
    "editor_value",
    "example_names",
    "fit_to_model",
    "generate_variants",
    "legend_html",
    "load_example",
    "load_models",
    "make_after_map",
    "md_escape",
    "metrics_markdown",
    "nearest_class",
    "painted_edits",
    "pair_metrics",
    "prediction_overlay",
    "read_before_image",
    "read_uploaded_map",
    "require_change",
    "session_change",
    "start_session",
    "status_markdown",
    "swatch_names_css",
    "warm_up",
    "write_sample_zip",
    "zero_shot_prediction",
]
