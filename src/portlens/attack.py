"""MITRE ATT&CK as portlens names it: the one home of tactic spellings (Sentinel writes them
without spaces, "InitialAccess"; watchlists mix styles) and the technique names alerts cite."""

from __future__ import annotations

import re

# Sentinel spelling -> (ATT&CK id, caption). Enterprise tactics, the ICS tactics Sentinel knows,
# and Sentinel's own PreAttack (no ATT&CK id).
TACTICS: dict[str, tuple[str | None, str]] = {
    "Reconnaissance": ("TA0043", "Reconnaissance"),
    "ResourceDevelopment": ("TA0042", "Resource Development"),
    "InitialAccess": ("TA0001", "Initial Access"),
    "Execution": ("TA0002", "Execution"),
    "Persistence": ("TA0003", "Persistence"),
    "PrivilegeEscalation": ("TA0004", "Privilege Escalation"),
    "DefenseEvasion": ("TA0005", "Defense Evasion"),
    "CredentialAccess": ("TA0006", "Credential Access"),
    "Discovery": ("TA0007", "Discovery"),
    "LateralMovement": ("TA0008", "Lateral Movement"),
    "Collection": ("TA0009", "Collection"),
    "Exfiltration": ("TA0010", "Exfiltration"),
    "CommandAndControl": ("TA0011", "Command and Control"),
    "Impact": ("TA0040", "Impact"),
    "PreAttack": (None, "PreAttack"),
    "ImpairProcessControl": ("TA0106", "Impair Process Control"),
    "InhibitResponseFunction": ("TA0107", "Inhibit Response Function"),
}

TECHNIQUES = {
    "T1095": "Non-Application Layer Protocol",
    "T1059": "Command and Scripting Interpreter",
    "T1203": "Exploitation for Client Execution",
    "T1190": "Exploit Public-Facing Application",
    "T1571": "Non-Standard Port",
    "T1021": "Remote Services",
    "T1046": "Network Service Discovery",
    "T1071": "Application Layer Protocol",
    "T1210": "Exploitation of Remote Services",
}

_BY_KEY = {re.sub(r"[^a-z]", "", name.lower()): name for name in TACTICS}
_WORDS = re.compile(r"[A-Za-z]+")


def tactic_key(text: str) -> str:
    """Lower-case letters only: "Initial Access", "InitialAccess" and "initial-access" agree."""
    return re.sub(r"[^a-z]", "", text.lower())


def known_tactic(text: str) -> str | None:
    """The Sentinel spelling of a tactic, or None when it is not an ATT&CK tactic."""
    return _BY_KEY.get(tactic_key(text))


def tactic_name(text: str) -> str:
    """The Sentinel spelling; an unknown tactic keeps its words, capitalised and joined."""
    return known_tactic(text) or "".join(w[:1].upper() + w[1:] for w in _WORDS.findall(text))


def split_tactics(text: str | None) -> list[str]:
    """'InitialAccess,Execution' / 'Lateral Movement' -> ['InitialAccess', 'Execution'] ...
    (Sentinel spellings, in order, without repeats)."""
    out: list[str] = []
    for part in (text or "").split(","):
        name = tactic_name(part)
        if name and name not in out:
            out.append(name)
    return out
