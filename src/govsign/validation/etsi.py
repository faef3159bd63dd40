"""The ETSI TS 119 102-2 XML validation report of a PDF's signatures, so that European tools can
read our verdicts.

pyHanko writes the report of one signature from its engine's result; the indication written is
then replaced by ours, since our rules are stricter than the engine's (a change after signing
that the signature does not permit fails it; weak algorithms are never passed). The packaging of
several signatures into one report uses pyHanko's report builders (``report.tools``), which are
not part of its documented API: pinned by the tests that read the XML back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from pyhanko.generated.etsi import ts_11910202
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.report import tools
from xsdata.formats.dataclass.context import XmlContext
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig

from govsign.validation.report import Indication, SignatureReport

log = logging.getLogger(__name__)

#: The bindings' metadata, built once (building it per report cost about a tenth of a verification).
_CONTEXT = XmlContext()
_CONFIG = SerializerConfig(indent="  ")

_MAIN = {
    Indication.TOTAL_PASSED: "urn:etsi:019102:mainindication:total-passed",
    Indication.TOTAL_FAILED: "urn:etsi:019102:mainindication:total-failed",
    Indication.INDETERMINATE: "urn:etsi:019102:mainindication:indeterminate",
}


def etsi_report(validated: Sequence[tuple[EmbeddedPdfSignature, Any, SignatureReport]]) -> str | None:
    """The XML report of the signatures (with pyHanko's result and our report of each); None when
    there is no signature or the report cannot be built (logged: the JSON report stands)."""
    if not validated:
        return None
    try:
        reports = tuple(_one(signature, result, ours) for signature, result, ours in validated)
        objects: dict[str, Any] = {}
        for _, result, _ in validated:
            for vo in result.validation_objects:
                packaged = tools._package_validation_object(vo)
                objects.setdefault(packaged.id, packaged)
        report = ts_11910202.ValidationReport(
            signature_validation_report=reports,
            signature_validation_objects=ts_11910202.ValidationObjectListType(tuple(objects.values())),
        )
        rendered: str = XmlSerializer(context=_CONTEXT, config=_CONFIG).render(report, ns_map=tools.NAMESPACES)
        return rendered
    except Exception:
        log.exception("could not build the ETSI TS 119 102-2 report")
        return None


def _one(signature: EmbeddedPdfSignature, result: Any, ours: SignatureReport) -> Any:
    single = tools._generate_report(signature, result)
    subs = (f"urn:etsi:019102:subindication:{ours.sub_indication}",) if ours.sub_indication else ()
    status = ts_11910202.ValidationStatusType(main_indication=_MAIN[ours.indication], sub_indication=subs)
    return dataclasses.replace(single, signature_validation_status=status)
