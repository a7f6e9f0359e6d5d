"""Which lead image a published story shows: the one the rewrite stage chose, unless the
operator turned images off (``[settings] images = false``) or its address fails the link check.

Every output (Atom's Media RSS, the JSON Feed's ``image``, the pages' ``<img>``) asks here, so
one setting and one check govern them all. The picture is linked by its address: we never
fetch or store it.
"""

from __future__ import annotations

from aggregator.config import PublishSettings
from aggregator.models import LeadImage, PublishedStory
from aggregator.publish.sanitize import safe_url

MEDIA_NS = "http://search.yahoo.com/mrss/"  # Media RSS, which feed readers understand in Atom


def shown_image(story: PublishedStory, settings: PublishSettings) -> LeadImage | None:
    """The story's lead image as published, or None (none chosen, images off, unsafe URL)."""
    image = story.image
    if image is None or not settings.images or safe_url(image.url) is None:
        return None
    return image
