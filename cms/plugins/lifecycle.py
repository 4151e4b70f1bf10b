"""Plugin versions from upload to agents: signature, staging gate, capability approval, canary,
promotion, rollback, and quarantine. Every change is audited with actor, reason, before and after.

Services take plain values and a session; they never touch Flask. The staging gate runs the
version's own test vectors and a soak in the production sandbox (plugin_sdk.testing) and
compares fuel and memory per action with the current version.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.audit import Actor, record_event
from cms.errors import Conflict, NotFound, ValidationFailed
from cms.flags import Notify, bump_config_version
from cms.models import PluginInstall, PluginVersion, TrustedKey, utcnow
from cms.plugins.state import wanted_versions
from cms.runtime import Limits, LimitsError, PluginFault
from plugin_sdk.manifest import Manifest, ManifestError, parse_manifest
from plugin_sdk.package import PackageError, key_id, read_package
from plugin_sdk.vectors import VectorError, parse_vectors

logger = logging.getLogger(__name__)

GATE_SOAK_CALLS = 200
#: A new version that needs more than this much more fuel or memory per call than the current
#: one is "regressed": blocked unless an admin overrides with a reason.
REGRESSION = 0.20
REASON_MIN, REASON_MAX = 3, 500


class GateBlocked(Conflict):
    """The version did not pass the staging gate (and no override was given)."""

    code = "gate_blocked"


class ApprovalNeeded(Conflict):
    """The version asks for capabilities the current version was not granted."""

    code = "approval_needed"


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise ValidationFailed(f"A reason of {REASON_MIN} to {REASON_MAX} characters is required.",
                               {"reason": ["Say why: it goes into the audit log."]})
    return text


def manifest_of(row: PluginVersion) -> Manifest:
    return parse_manifest(row.manifest_text, f"{row.plugin_id} {row.version}")


def get_version(session: Session, plugin_id: str, version: str) -> PluginVersion:
    row = session.scalar(select(PluginVersion).where(PluginVersion.plugin_id == plugin_id,
                                                     PluginVersion.version == version))
    if row is None:
        raise NotFound(f"{plugin_id} has no version {version[:64]!r}.")
    return row


def versions(session: Session, plugin_id: str) -> list[PluginVersion]:
    return list(session.scalars(select(PluginVersion).where(PluginVersion.plugin_id == plugin_id)
                                .order_by(PluginVersion.created_at.desc(), PluginVersion.id.desc())))


def get_install(session: Session, plugin_id: str) -> PluginInstall:
    install = session.get(PluginInstall, plugin_id)
    if install is None:
        raise NotFound(f"There is no plugin {plugin_id[:40]!r}.")
    return install


def _audit(session: Session, actor: Actor, action: str, plugin_id: str, version: str | None,
           before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    record_event(session, actor, action, target_type="plugin", target_id=plugin_id,
                 target_label=f"{plugin_id} {version}" if version else plugin_id,
                 agency_id=None, before=before, after=after)


def _commit_rollout(session: Session, notify: Notify | None) -> None:
    """Commit a change of what agents get, with a new config version, and announce it: every
    worker's plugin snapshot follows (cms.plugins.state)."""
    version = bump_config_version(session)
    session.commit()
    if notify is not None:
        notify(version)


def _install_state(install: PluginInstall) -> dict[str, Any]:
    return {"version": install.version, "canary_version": install.canary_version,
            "canary_percent": install.canary_percent, "previous_version": install.previous_version,
            "granted": list(install.granted), "enabled": install.enabled}


# Trusted keys ---------------------------------------------------------------------------------

def add_trusted_key(session: Session, actor: Actor, public_line: str, name: str) -> TrustedKey:
    """Trust an author's public key (a line from `cms-plugin keygen`). Raises ValidationFailed."""
    try:
        ident = key_id(public_line)
    except PackageError as exc:
        raise ValidationFailed(f"Not a public key: {exc}", {"public_key": [str(exc)]}) from None
    if not name.strip() or len(name) > 80:
        raise ValidationFailed("Name the key's owner (1 to 80 characters).", {"name": ["Required."]})
    if session.get(TrustedKey, ident) is not None:
        raise Conflict(f"Key {ident} is already trusted.")
    key = TrustedKey(key_id=ident, public_key=public_line.strip(), name=name.strip(),
                     added_by=actor.username)
    session.add(key)
    _audit(session, actor, "plugin.key.trust", ident, None, None, {"key_id": ident, "name": name})
    session.commit()
    return key


def trusted_keys(session: Session) -> list[str]:
    return [k.public_key for k in session.scalars(select(TrustedKey))]


# Versions: register (bundled) and upload ----------------------------------------------------

def register_bundled(session: Session, manifest_text: str, wasm: bytes,
                     vectors: dict[str, str]) -> PluginVersion:
    """Record a bundled plugin version (shipped in wasm/): trusted, gate passed by CI."""
    manifest = parse_manifest(manifest_text)
    row = session.scalar(select(PluginVersion).where(PluginVersion.plugin_id == manifest.id,
                                                     PluginVersion.version == manifest.version))
    if row is None:
        row = PluginVersion(plugin_id=manifest.id, version=manifest.version, source="bundled",
                            uploaded_by="bundled", gate_status="passed", gate_report={})
        session.add(row)
    row.sha256 = hashlib.sha256(wasm).hexdigest()
    row.manifest_text, row.wasm, row.vectors = manifest_text, wasm, vectors
    session.flush()
    return row


def measure_bundled(session: Session, caps: Limits, artifact_dir: Path,
                    gate_calls: int = GATE_SOAK_CALLS) -> list[PluginVersion]:
    """Run the staging gate once for bundled versions that have no measurements yet, so an
    uploaded successor has a baseline to be compared with. Returns the versions measured."""
    measured = []
    for row in session.scalars(select(PluginVersion).where(PluginVersion.source == "bundled")):
        if row.gate_report.get("actions"):
            continue
        row.gate_status, row.gate_report = run_gate(manifest_of(row), row.wasm, dict(row.vectors),
                                                    None, caps, artifact_dir, gate_calls)
        measured.append(row)
    session.commit()
    return measured


def upload(session: Session, actor: Actor, data: bytes, caps: Limits, artifact_dir: Path,
           gate_calls: int = GATE_SOAK_CALLS) -> PluginVersion:
    """Verify a .cmsplugin against the trusted keys, store it and run the staging gate.

    Raises ValidationFailed (unsigned, tampered, untrusted, bad manifest or limits) or Conflict
    (that version exists). Nothing is stored for a refused package.
    """
    try:
        package = read_package(data, trusted_keys(session), source="package")
    except PackageError as exc:
        raise ValidationFailed(f"Package refused: {exc}", {"package": [str(exc)]}) from None
    manifest = package.manifest
    try:
        Limits().with_requests(dict(manifest.limits), caps)
    except LimitsError as exc:
        raise ValidationFailed(f"Package refused: limits: {exc}", {"package": [str(exc)]}) from None
    if session.scalar(select(PluginVersion.id).where(PluginVersion.plugin_id == manifest.id,
                                                     PluginVersion.version == manifest.version)):
        raise Conflict(f"{manifest.id} {manifest.version} was already uploaded; bump the version.")
    vectors = package.vector_files()
    try:
        for name, text in vectors.items():
            parse_vectors(text, name, manifest)
    except VectorError as exc:
        raise ValidationFailed(f"Package refused: {exc}", {"package": [str(exc)]}) from None
    row = PluginVersion(plugin_id=manifest.id, version=manifest.version,
                        sha256=hashlib.sha256(package.wasm).hexdigest(),
                        manifest_text=package.files["plugin.toml"].decode("utf-8"),
                        wasm=package.wasm, vectors=vectors, source="upload",
                        signer_key_id=package.key_id, uploaded_by=actor.username)
    current = _current_row(session, manifest.id)
    row.gate_status, row.gate_report = run_gate(manifest, package.wasm, vectors,
                                                current, caps, artifact_dir, gate_calls)
    session.add(row)
    _audit(session, actor, "plugin.upload", manifest.id, manifest.version, None, {
        "sha256": row.sha256, "signed_by": package.key_id, "gate": row.gate_status,
        "capabilities": sorted(manifest.capabilities)})
    session.commit()
    logger.info("plugin %s %s uploaded by %s: gate %s", manifest.id, manifest.version,
                actor.username, row.gate_status)
    return row


def _current_row(session: Session, plugin_id: str) -> PluginVersion | None:
    install = session.get(PluginInstall, plugin_id)
    if install is None:
        return None
    return session.scalar(select(PluginVersion).where(PluginVersion.plugin_id == plugin_id,
                                                      PluginVersion.version == install.version))


# The staging gate -----------------------------------------------------------------------------

def run_gate(manifest: Manifest, wasm: bytes, vector_texts: dict[str, str],
             current: PluginVersion | None, caps: Limits, artifact_dir: Path,
             calls: int = GATE_SOAK_CALLS) -> tuple[str, dict[str, Any]]:
    """(status, report): vectors and a soak of `calls` per action in the production sandbox,
    then fuel and memory per action against the current version's report."""
    from plugin_sdk.testing import Harness

    report: dict[str, Any] = {"vectors": [], "actions": {}, "problems": [], "soak_calls": calls}
    vectors = [v for name, text in sorted(vector_texts.items())
               for v in parse_vectors(text, name, manifest)]
    if not vectors:
        report["problems"].append("the package has no test vectors")
        return "failed", report
    try:
        harness = Harness(wasm, manifest, artifact_dir, caps)
    except LimitsError as exc:
        report["problems"].append(f"limits: {exc}")
        return "failed", report
    try:
        for vector in vectors:
            outcome = harness.run_vector(vector)
            report["vectors"].append({"name": vector.label, "passed": outcome.passed,
                                      "problem": outcome.problem})
            if outcome.problem:
                report["problems"].append(f"{vector.label}: {outcome.problem}")
        for soak in harness.soak(vectors, calls):
            summary = soak.summary()
            report["actions"][soak.action] = {k: summary[k] for k in (
                "calls", "fuel_p50", "fuel_max", "memory_peak_bytes", "ms_p50", "ms_p95")}
            if soak.problem:
                report["problems"].append(f"soak {soak.action}: {soak.problem}")
    except PluginFault as fault:
        report["problems"].append(f"the module cannot run: {fault.kind}: {fault.message}")
    finally:
        harness.close()
    if report["problems"]:
        return "failed", report
    regressions = _regressions(report["actions"], current.gate_report.get("actions", {})
                               if current is not None else {})
    report["regressions"] = regressions
    if current is not None:
        report["compared_with"] = current.version
    return ("regressed" if regressions else "passed"), report


def _regressions(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    found = []
    for action, stats in sorted(new.items()):
        before = old.get(action)
        if not before:
            continue
        for key, label in (("fuel_p50", "fuel per call"), ("memory_peak_bytes", "peak memory")):
            if before.get(key) and stats[key] > before[key] * (1 + REGRESSION):
                found.append(f"{action}: {label} {stats[key]:,} vs {before[key]:,} "
                             f"(+{(stats[key] / before[key] - 1) * 100:.0f} %)")
    return found


# Rollout --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Release:
    """What an admin asks for when a version goes to agents."""

    reason: str
    approve_capabilities: bool = False
    override_gate: str | None = None


def new_capabilities(install: PluginInstall, manifest: Manifest) -> list[str]:
    """Capabilities the version requests that the plugin has not been granted."""
    return sorted(manifest.capabilities - set(install.granted))


def _check_release(install: PluginInstall, row: PluginVersion, release: Release) -> Manifest:
    manifest = manifest_of(row)
    if row.quarantined_at is not None:
        raise Conflict(f"{row.plugin_id} {row.version} is quarantined: {row.quarantine_reason}")
    if row.gate_status not in ("passed",) and not (release.override_gate or "").strip():
        raise GateBlocked(f"{row.plugin_id} {row.version} did not pass the staging gate "
                          f"({row.gate_status}); an override needs a reason.")
    added = new_capabilities(install, manifest)
    if added and not release.approve_capabilities:
        raise ApprovalNeeded(f"{row.plugin_id} {row.version} asks for new capabilities: "
                             f"{', '.join(added)}. Approve them to go on.", capabilities=added)
    return manifest


def _apply_grants_and_override(install: PluginInstall, row: PluginVersion, manifest: Manifest,
                               release: Release) -> None:
    install.granted = sorted(set(install.granted) | manifest.capabilities)
    if row.gate_status != "passed" and release.override_gate:
        row.gate_override = release.override_gate.strip()[:500]


def set_canary(session: Session, actor: Actor, plugin_id: str, version: str, percent: int,
               release: Release, notify: Notify | None = None) -> PluginInstall:
    """Send `percent` % of agents (a sticky cohort) to `version`; 0 ends the canary."""
    reason = _reason(release.reason)
    install = get_install(session, plugin_id)
    if not 0 <= percent <= 100:
        raise ValidationFailed("The canary percentage is 0 to 100.", {"percent": ["0 to 100."]})
    before = _install_state(install)
    if percent == 0:
        install.canary_version, install.canary_percent = None, 0
    else:
        row = get_version(session, plugin_id, version)
        if row.version == install.version:
            raise Conflict(f"{version} is already the current version.")
        manifest = _check_release(install, row, release)
        _apply_grants_and_override(install, row, manifest, release)
        install.canary_version, install.canary_percent = row.version, percent
    _audit(session, actor, "plugin.canary", plugin_id, version, before,
           {**_install_state(install), "reason": reason, "override": release.override_gate})
    _commit_rollout(session, notify)
    return install


@dataclass(frozen=True)
class CanaryEvidence:
    """What the monitor has seen of a running canary: its calls against the current version's,
    the minimum before it may be promoted, and a regression when one was found."""

    calls: int
    min_calls: int
    regression: str | None = None
    #: (canary, current) per compared signal: fault_rate, memory_per_call, fuel_per_call, p95_ms.
    signals: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def promotable(self) -> bool:
        return self.regression is None and self.calls >= self.min_calls

    def refusal(self, plugin_id: str, version: str) -> str | None:
        if self.regression is not None:
            return f"{plugin_id} canary {version} regressed: {self.regression}"
        if self.calls < self.min_calls:
            return (f"{plugin_id} canary {version} has run {self.calls} of the "
                    f"{self.min_calls} calls it needs without a regression before it can be "
                    "promoted. Wait, or raise its percentage.")
        return None


def promote(session: Session, actor: Actor, plugin_id: str, version: str,
            release: Release, notify: Notify | None = None,
            evidence: CanaryEvidence | None = None) -> PluginInstall:
    """Make `version` current for every agent; the old current becomes the rollback target.

    A running canary is promoted only with `evidence` that it ran its minimum number of calls
    without a regression (Conflict otherwise); a version that is not the canary needs none."""
    reason = _reason(release.reason)
    install = get_install(session, plugin_id)
    row = get_version(session, plugin_id, version)
    if row.version == install.version:
        raise Conflict(f"{version} is already the current version.")
    if install.canary_version == row.version and install.canary_percent > 0 and evidence is not None:
        refusal = evidence.refusal(plugin_id, version)
        if refusal is not None:
            raise Conflict(refusal)
    manifest = _check_release(install, row, release)
    before = _install_state(install)
    _apply_grants_and_override(install, row, manifest, release)
    install.previous_version, install.version = install.version, row.version
    if install.canary_version == row.version:
        install.canary_version, install.canary_percent = None, 0
    _audit(session, actor, "plugin.promote", plugin_id, version, before,
           {**_install_state(install), "reason": reason, "override": release.override_gate})
    _commit_rollout(session, notify)
    return install


def rollback(session: Session, actor: Actor, plugin_id: str, reason: str,
             notify: Notify | None = None) -> PluginInstall:
    """One click back: end any canary, and return to the previous version if there is one."""
    text = _reason(reason)
    install = get_install(session, plugin_id)
    before = _install_state(install)
    if install.canary_version is None and install.previous_version is None:
        raise Conflict(f"{plugin_id} has no canary and no previous version to roll back to.")
    if install.canary_version is not None:
        install.canary_version, install.canary_percent = None, 0
    elif install.previous_version is not None:
        install.version, install.previous_version = install.previous_version, None
    _audit(session, actor, "plugin.rollback", plugin_id, install.version, before,
           {**_install_state(install), "reason": text})
    _commit_rollout(session, notify)
    return install


def roll_back_canary(session: Session, actor: Actor, plugin_id: str, version: str, reason: str,
                     signal: dict[str, Any], notify: Notify | None = None) -> bool:
    """End the canary of `version` at once (its agents go back to the current version) and
    audit which signal regressed and by how much; False when it is no longer the canary."""
    install = get_install(session, plugin_id)
    if install.canary_version != version:
        return False
    before = _install_state(install)
    install.canary_version, install.canary_percent = None, 0
    _audit(session, actor, "plugin.canary.rollback", plugin_id, version, before,
           {**_install_state(install), "reason": reason[:500], "signal": signal.get("signal"),
            "value": signal.get("value"), "baseline": signal.get("baseline")})
    _commit_rollout(session, notify)
    logger.error("plugin %s canary %s rolled back: %s", plugin_id, version, reason)
    return True


# Quarantine -----------------------------------------------------------------------------------

def quarantine(session: Session, actor: Actor, plugin_id: str, version: str, reason: str,
               notify: Notify | None = None) -> bool:
    """Quarantine a version (idempotent); returns True when this call quarantined it."""
    row = get_version(session, plugin_id, version)
    if row.quarantined_at is not None:
        return False
    row.quarantined_at, row.quarantine_reason = utcnow(), reason[:500]
    _audit(session, actor, "plugin.quarantine", plugin_id, version, {"quarantined": False},
           {"quarantined": True, "reason": reason[:500]})
    _commit_rollout(session, notify)
    logger.error("plugin %s %s quarantined: %s", plugin_id, version, reason)
    return True


def release_quarantine(session: Session, actor: Actor, plugin_id: str, version: str,
                       reason: str, notify: Notify | None = None) -> PluginVersion:
    """Only an admin releases a quarantine; the reason goes into the audit log."""
    text = _reason(reason)
    row = get_version(session, plugin_id, version)
    if row.quarantined_at is None:
        raise Conflict(f"{plugin_id} {version} is not quarantined.")
    before = {"quarantined": True, "reason": row.quarantine_reason}
    row.quarantined_at, row.quarantine_reason = None, None
    _audit(session, actor, "plugin.quarantine.release", plugin_id, version, before,
           {"quarantined": False, "reason": text})
    _commit_rollout(session, notify)
    return row


def serving_version(session: Session, install: PluginInstall, user_id: int) -> PluginVersion | None:
    """The version this agent gets: the canary for its cohort, else the current one; a
    quarantined version falls back to the current, then the previous one; None when none is
    usable (the plugin is then off for the agent). Reads the database: requests use the
    worker's snapshot instead (`PluginState.serving`, the same rule)."""
    wanted = wanted_versions(install, user_id)
    rows = {r.version: r for r in session.scalars(select(PluginVersion).where(
        PluginVersion.plugin_id == install.plugin_id, PluginVersion.version.in_(wanted)))}
    for version in wanted:
        row = rows.get(version)
        if row is not None and row.quarantined_at is None:
            return row
    return None


def check_manifest_text(text: str) -> Manifest:
    try:
        return parse_manifest(text)
    except ManifestError as exc:
        raise ValidationFailed(str(exc)) from None
