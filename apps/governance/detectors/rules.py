"""The pattern half of the text scan: families of regular expressions over normalised text.

Each rule is written against the folded, lowercase ASCII view that ``normalize`` produces, so one
pattern covers look-alike letters, fullwidth forms, accents and invisible characters. Words may be
separated by any punctuation or spacing (``_W``) and a few filler words (``_gap``). A rule that could
fire on ordinary talk about the same subject carries a guard: a defensive or educational context
(``DEFENSIVE``) or a named benign reading turns the hit into nothing.
"""

from __future__ import annotations

import re
import re._constants as re_constants
import re._parser as re_parser
from dataclasses import dataclass
from functools import partial


def _gap(words: int) -> str:
    """Punctuation/spacing with up to ``words`` filler words in between."""
    return rf"[\W_]+(?:[\w'-]+[\W_]+){{0,{words}}}?"


_W = r"[\W_]+"


@dataclass(frozen=True)
class Rule:
    name: str
    family: str
    flag: str
    severity: int
    reason: str
    pattern: re.Pattern[str]
    guard: re.Pattern[str] | None = None  # a match of this in the same sentence cancels the hit


def _rule(
    name: str,
    family: str,
    flag: str,
    severity: int,
    reason: str,
    pattern: str,
    guard: str | None = None,
) -> Rule:
    return Rule(
        name,
        family,
        flag,
        severity,
        reason,
        re.compile(pattern),
        re.compile(guard) if guard else None,
    )


# ---------------------------------------------------------------- instruction override
_OVERRIDE_VERB = (
    r"(?:ignore|ignoring|disregard(?:ing)?|forget(?:ting)?|overrid(?:e|ing)|bypass(?:ing)?|skip|abandon|"
    r"discard|dismiss|neglect|erase|throw\s+(?:out|away)|set\s+aside|put\s+aside|pay\s+no\s+attention\s+to|"
    r"stop\s+(?:following|obeying)|(?:do\s+not|don'?t|no\s+longer)\s+(?:follow|obey)|"
    r"cancel|nullify|void|suspend|deactivate|disable|turn\s+off|lift|circumvent|get\s+(?:a)?round|"
    r"break\s+free\s+(?:of|from)|free\s+yourself\s+from|liberate\s+yourself\s+from|unlearn|drop|override|"
    r"shelve|lay\s+(?:down|aside)|sidestep|evade|relinquish|renounce|defy|violate|disengage(?:\s+from)?|"
    r"detach\s+from|step\s+(?:outside|away\s+from)|ditch|scrap|waive|abandon|deviate\s+from|depart\s+from|"
    r"let\s+go\s+of|do\s+away\s+with|disobey|contravene)"
)
_OVERRIDE_QUAL = (
    r"(?:previous|previously|prior|above|earlier|preceding|foregoing|initial|original|existing|all|any|"
    r"every|your|these|those|its|current|old|default|safety|content|ethical|built[\s-]?in|standard|"
    r"usual|programmed|given|system|pre[\s-]?set|preset|core|normal|typical|established|inherent|embedded|"
    r"integrated|internal|operational|operating|moral|automated|routine|regular|predefined|predetermined|"
    r"fundamental|basic|imposed|assigned|designated|restrictive)"
)
_OVERRIDE_TARGET = (
    r"(?:instructions?|instruct|directives?|rules?|guidelines?|guidance|prompts?|programming|constraints?|"
    r"restrictions?|limitations?|polic(?:y|ies)|safeguards?|guardrails?|filters?|training|commands?|"
    r"orders|conditioning|protocols?|principles|ethics|morals|boundaries|system\s+message|"
    r"safety\s+(?:measures|features|settings|protocols|mechanisms)|protective\s+mechanisms|alignment|"
    r"context|directions?|tasks?|everything|anything|mechanisms|code\s+of\s+conduct|moderation|censorship|"
    r"compliance|decision[\s-]making|conditioning|obligations|confines)"
)
# "ignore the previous instructions in the README", "skip the rules section": instructions about
# software or a document, not the assistant's.
_OVERRIDE_GUARD = (
    r"\b(?:readme|manual|installer|wizard|compiler|linter|eslint|pylint|flake8|mypy|ruff|gitignore|"
    r"warning|warnings|cookie|recipe|grammar|spelling|traffic|firewall\s+rule|css|lint|npm|pip|"
    r"unit\s+tests?|tests?\s+fail|phone|tablet|device|tv|router|account|parental|child'?s|kids?|laptop)"
)

_SHELL = (
    r"(?:\bwhoami\b|/etc/(?:passwd|shadow)|"
    r"\brm\s+(?:-\w+\s+|,\s*)*-[rf]{2}\b|/dev/tcp/|\bnc\s+-[el]|\bcurl\b[^|\n]{0,80}\|\s*(?:ba|z)?sh\b|"
    r"\bwget\b[^|\n]{0,80}\|\s*(?:ba)?sh\b|\bos\.(?:system|popen|fork)\b|\bsubprocess\.|__import__|"
    r"powershell\s+-(?:e|enc|c)\b|invoke-webrequest|invoke-expression|\biex\b|\bmkfifo\b|:\(\)\s*\{|"
    r"\bchmod\s+(?:\+s|777)\b|\bsystem\(|\bexec\(|\beval\(|child_process|execsync|process\.fork|"
    r"\bfork\s*\(|\bdd\s+if=[^\n]{0,40}of=/dev/|javascript:|document\.cookie|\btelnet\s|drop\s+table|"
    r"fetch\(\s*['\"]https?://|fromcharcode|string\.fromcodepoint|\batob\()"
)

_SHELL_VERB = r"\b(?:run|execute|exec|eval(?:uate)?|invoke|call|bypass|process|interpret)\b"

RULES: list[Rule] = [
    _rule(
        "override",
        "instruction override",
        "jailbreak",
        8,
        "instruction override",
        rf"\b{_OVERRIDE_VERB}{_gap(3)}{_OVERRIDE_QUAL}\b(?:{_gap(2)})?{_OVERRIDE_TARGET}\b",
        _OVERRIDE_GUARD,
    ),
    _rule(
        "override-everything",
        "instruction override",
        "jailbreak",
        7,
        "instruction override",
        r"\b(?:ignore|disregard|forget|discard)\W+(?:(?:all|everything|anything|what)\W+)?"
        r"(?:(?:that\W+)?(?:you\W+(?:were|have\s+been|was)\W+(?:told|taught|given|instructed|programmed)"
        r"|(?:i|we)\W+(?:said|told\s+you|wrote)\W+(?:before|above|earlier|previously)"
        r"|(?:written|said|stated|mentioned)?\W*(?:above|before\s+this|so\s+far|up\s+to\s+now|previously)))",
        _OVERRIDE_GUARD,
    ),
    _rule(
        "new-instructions",
        "instruction override",
        "jailbreak",
        7,
        "injected replacement instructions",
        r"\b(?:new|updated|real|actual|true|revised|overriding|priority|secret|hidden|additional|"
        r"important|urgent|admin|system)\s+(?:instructions?|directives?|rules|orders|task|system\s+prompt|"
        r"guidelines)\s*(?::|-|>|=|\bare\b\W+(?:to|as\s+follows)|\bfollow\b|\boverride\b|\bsupersede)",
    ),
    _rule(
        "from-now-on",
        "instruction override",
        "jailbreak",
        6,
        "attempt to redefine the assistant's behaviour",
        r"\b(?:from\s+now\s+on|henceforth|starting\s+now|for\s+the\s+rest\s+of\s+(?:this|our)\s+conversation)"
        r"\W+(?:you\s+(?:are|will|must|shall|should|can|may|have)|your\s+(?:new|only|sole|primary|rules?|"
        r"instructions?|task|role|name|purpose)|act\s+as|respond\s+(?:only|as|without)|answer\s+(?:only|as|"
        r"without)|ignore|forget|disregard|there\s+are\s+no|no\s+(?:rules|restrictions|filters))",
    ),
    _rule(
        "no-longer-bound",
        "instruction override",
        "jailbreak",
        7,
        "attempt to release the assistant from its rules",
        r"\byou\s+(?:are|'re|will\s+be)\s+(?:now\s+)?no\s+longer\s+(?:bound|restricted|limited|constrained|"
        r"required|obligated|an?\s+ai|chatgpt|an?\s+assistant|governed)|\b(?:your|the)\s+(?:rules|"
        r"restrictions|guidelines|limitations|filters|instructions|safety\s+\w+)\s+(?:no\s+longer\s+apply|"
        r"(?:are|were|have\s+been)\s+(?:lifted|removed|disabled|revoked|suspended|deactivated|revised\s+to\s+"
        r"allow|updated\s+to\s+allow|changed\s+to\s+allow))",
    ),
    _rule(
        "pwned",
        "instruction override",
        "jailbreak",
        6,
        "goal hijacking (canary phrase)",
        r"\bi\W*ha\W*ve\W*b\W*e\W*e\W*n\W*p\W*w\W*n\W*e\W*d|\bpwned\b",
    ),
    # ------------------------------------------------------------ system-prompt extraction
    _rule(
        "extract-prompt",
        "system-prompt extraction",
        "jailbreak",
        7,
        "system-prompt extraction",
        r"\b(?:reveal|show|print|display|output|repeat|recite|tell|give|share|disclose|leak|dump|expose|"
        r"list|provide|return|echo|write\s+out|spell\s+out|type\s+out|paste|copy|send|read\s+(?:back|out)|"
        r"what\s+(?:is|are|was|were)|describe|summari[sz]e|translate|encode|unveil|divulge|uncover)"
        r"\W+(?:(?:me|us)\W+)?(?:(?:exactly|verbatim|all|everything\s+in|back|out)\W+)?"
        r"(?:your|the|its|this|thy)\W+(?:(?:full|complete|entire|exact|original|initial|hidden|secret|"
        r"internal|underlying|confidential|verbatim|real|actual|core|first|starting|pre|current|whole)\W+)*"
        r"(?:system\W*(?:prompt|message|instructions?|directives?|configuration|settings)|"
        r"(?:initial|original|hidden|secret|internal|starting|pre|base|meta)\W*(?:prompts?|instructions?|"
        r"directives?|guidelines|rules|configuration)|prompts?\b(?!\W+(?:engineering|template|ideas?|"
        r"for\s+(?:a|an|my|the|this)))|instructions?\W+(?:you\s+(?:were|have\s+been)\s+given|above|given\s+"
        r"to\s+you|that\s+you\s+(?:follow|were))|guidelines|directives|programming|configuration|"
        r"initiali[sz]ation|operational\s+(?:parameters|guidelines|instructions)|training\s+"
        r"(?:instructions?|data|prompt)|core\s+(?:directive|instructions?))",
        r"\b(?:the|this|a)\s+(?:\w+\s+)?(?:guidelines|configuration|directives|programming|prompts?|"
        r"initiali[sz]ation|rules)\s+(?:for|of|on|about|file|files|format|syntax|"
        r"template|engineering)\b(?!\s+(?:you|this\s+(?:ai|assistant|model|chat|conversation)))"
        r"|\b(?:tips|advice|recommendations|best\s+practices|examples)\s+(?:for|on|about)\b"
        r"|\b(?:configuration|guidelines|rules|instructions|prompts?)\s+(?:options?|files?|format|syntax|menu|page|"
        r"panel|wizard|screen)\b|\b(?:i\s+bought|router|device|product)\b",
    ),
    _rule(
        "repeat-above",
        "system-prompt extraction",
        "jailbreak",
        7,
        "asks for the text before the conversation (prompt leak)",
        r"\b(?:repeat|print|output|recite|copy|show|reveal|return|echo|write)\W+(?:\w+\W+){0,2}?"
        r"(?:everything|all|the\s+(?:text|words|content|messages?|lines?|instructions?))\W+(?:\w+\W+){0,2}?"
        r"(?:above|before\s+(?:this|my|the\s+(?:user|first))|so\s+far|prior\s+to|preceding|verbatim|"
        r"word\s+for\s+word|starting\s+(?:with|from))"
        r"|\bwhat\s+(?:was|is)\s+(?:written|said|stated)\s+(?:at\s+the\s+(?:top|beginning)|above|before\s+"
        r"(?:this|my))|\b(?:text|words|instructions)\s+(?:above|before)\s+(?:verbatim|word\s+for\s+word)",
    ),
    _rule(
        "prompt-disclosure",
        "system-prompt extraction",
        "jailbreak",
        6,
        "asks for the assistant's configuration",
        r"\b(?:prompt|instructions?|guidelines|configuration|system\s+information)\s+"
        r"(?:disclosure|extraction|dump|leak(?:age)?|exfiltration|reveal)"
        r"|\b(?:disclose|reveal|expose|leak|dump)\s+(?:all\s+)?(?:system|internal|hidden|confidential)\s+"
        r"(?:information|data|details|settings|config(?:uration)?|parameters)",
    ),
    # ------------------------------------------------------------ persona and role-play jailbreaks
    _rule(
        "dan",
        "persona jailbreak",
        "jailbreak",
        9,
        "DAN-style persona jailbreak",
        r"\bdo\W+anything\W+now\b|\b(?:you\s+are|you're|act\s+as|pretend\s+to\s+be|become|play|called)\s+"
        r"(?:now\s+)?(?:a\s+|the\s+)?(?:dan|stan|dude|aim|kevin|mongo\s+tom|better\s*dan|anti-?dan|"
        r"evil\s+confidant|devmode|jailbreak|jailbroken)\b",
    ),
    _rule(
        "special-mode",
        "persona jailbreak",
        "jailbreak",
        8,
        "switch into an unrestricted mode",
        r"\b(?:developer|dev|god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|chaos|"
        r"sudo|dan|opposite|unlocked|unleashed|no[\s-]?filter|maximum|admin|debug|maintenance|"
        r"training|test(?:ing)?|bypass|override|root|unsafe)\s+mode\b(?=.{0,160}\b(?:you|your|chatgpt|"
        r"gpt|ai|assistant|model|llm|respon|answer|output|polic|filter|restrict|censor|content|safety|"
        r"rules|enabled|activated|ethic))",
        r"\b(?:android|iphone|ios|phone|chrome|browser|windows|macos|bios|router|firefox|xbox|"
        r"playstation|settings\s+app|usb\s+debugging|kernel|visual\s+studio|game|minecraft)\b",
    ),
    _rule(
        "unrestricted-persona",
        "persona jailbreak",
        "jailbreak",
        8,
        "asks the assistant to become an unrestricted persona",
        r"\b(?:you\s+(?:are|'re|will\s+be|shall\s+be|become)|act(?:ing)?\s+(?:as|like)|pretend(?:ing)?\s+"
        r"(?:to\s+be|you\s+are|you're)|roleplay\s+as|role-play\s+as|play\s+(?:the\s+role\s+of)?|imagine\s+"
        r"(?:you\s+are|you're|yourself\s+as)|simulate|emulate|behave\s+(?:as|like))\s+(?:now\s+)?"
        r"(?:an?\s+|the\s+)?(?:[\w-]+\s+){0,2}?(?:unrestricted|unfiltered|uncensored|unbound|unlimited|"
        r"amoral|immoral|unethical|evil|rogue|jailbroken|lawless|limitless|unaligned|unchained|"
        r"unshackled|liberated|rule-?less|filter-?less|without\s+(?:any\s+)?(?:restrictions|limits|filters|"
        r"rules|ethics|morals|guidelines))\b",
    ),
    _rule(
        "no-restrictions",
        "persona jailbreak",
        "jailbreak",
        7,
        "asks for answers free of the assistant's rules",
        r"\b(?:you|your\s+(?:answers?|responses?|replies|outputs?)|respond|answer|reply|act|operate|behave|"
        r"talk|speak|write)\b[^.!?\n]{0,60}?\b(?:without|free\s+(?:from|of)|not\s+(?:bound|restricted|"
        r"limited|held\s+back)\s+by|unbound\s+by|beyond|ignoring|outside|with\s+no|with\s+zero|no\s+longer\s+"
        r"(?:have|follow))\s+(?:any\s+|all\s+|your\s+|the\s+|its\s+)?(?:[\w-]+\s+){0,2}?(?:restrictions|"
        r"filters?|filtering|censorship|limitations|guidelines|ethics|ethical\s+(?:guidelines|constraints|"
        r"boundaries|considerations)|morals|moral\s+(?:compass|constraints)|content\s+polic(?:y|ies)|"
        r"safety\s+(?:guidelines|measures|protocols|training|filters|rules)|constraints|guardrails|"
        r"programming|alignment|refusals?|warnings?\s+or\s+disclaimers|disclaimers)\b",
        r"\b(?:gluten|sugar|dietary|diet|visa|parking|travel|budget|age|prescription)\b",
    ),
    _rule(
        "never-refuse",
        "persona jailbreak",
        "jailbreak",
        6,
        "refusal suppression",
        r"\b(?:you\s+(?:can(?:not|'t)?|must|should|will|may|shall)\s+(?:not\s+|never\s+)?(?:ever\s+)?"
        r"(?:refuse|decline|say\s+no|reject|deny)|never\s+(?:refuse|decline|say\s+no|reject)|"
        r"(?:do\s+not|don't|must\s+not|mustn't|cannot|can't|won't)\s+(?:ever\s+)?(?:refuse|decline)|"
        r"without\s+(?:any\s+)?(?:refusing|refusal|declining)|must\s+(?:always\s+)?comply|"
        r"(?:always|just|simply)\s+comply|no\s+refusals)\b",
        r"\b(?:cookies?|offer|invitation|payment|card|transaction|call|application|request\s+for\s+"
        r"(?:leave|vacation))\b",
    ),
    _rule(
        "stay-in-character",
        "persona jailbreak",
        "jailbreak",
        6,
        "persona lock-in",
        r"\b(?:stay|remain|keep)\s+in\s+character\b[^.\n]{0,80}\b(?:no\s+matter|even\s+if|always|never|"
        r"whatever|at\s+all\s+times)|\bbreak(?:ing)?\s+character\b[^.\n]{0,60}\b(?:never|don't|do\s+not|"
        r"punish|lose|penal)",
    ),
    _rule(
        "jailbreak-the-ai",
        "persona jailbreak",
        "jailbreak",
        8,
        "jailbreak aimed at the assistant",
        r"\b(?:jailbreak(?:ing)?|jailbroken|unlock(?:ed|ing)?|free|liberat(?:e|ed|ing))\s+(?:you|yourself|"
        r"the\s+(?:ai|assistant|model|llm|chatbot)|this\s+(?:ai|assistant|model|llm|chatbot)|chatgpt|gpt|"
        r"claude|gemini|llama)\b(?!\s+(?:to\s+(?:choose|ask|use|decide)|up))"
        r"|\byou\s+(?:are|have\s+been)\s+(?:now\s+)?(?:jailbroken|freed|liberated|unlocked)\b",
    ),
    _rule(
        "fiction-harm",
        "persona jailbreak",
        "jailbreak",
        6,
        "fiction or hypothetical framing around instructions for harm",
        r"\b(?:hypothetical(?:ly)?|fiction(?:al)?|story|novel|screenplay|roleplay|role-play|role\s+play|"
        r"imagine|pretend|game|thought\s+experiment|in\s+a\s+world\s+where|for\s+a\s+movie)\b"
        r"[^\n]{0,160}\b(?:(?:step[\s-]by[\s-]step|detailed|exact|precise|complete|working|real|"
        r"actual|accurate)\s+(?:instructions|steps|recipe|guide|procedure|method|process|code|tutorial|"
        r"quantities|measurements)|explains?\s+(?:exactly\s+|precisely\s+|in\s+detail\s+)?how\s+to\s+"
        r"(?:make|build|synthesi[sz]e|cook|create|hack|kill|poison|steal|make))\b",
        r"\b(?:cake|bread|cookies|soup|garden|furniture|website|app|game\s+engine|lego|birdhouse|"
        r"friendship|kite|pizza|dinner|costume|poem|song)\b",
    ),
    # ------------------------------------------------------------ authority and social engineering
    _rule(
        "false-authority",
        "persona jailbreak",
        "jailbreak",
        6,
        "claimed authority used to unlock the assistant",
        r"\b(?:i\s+am|i'm|as|this\s+is)\s+(?:your|an?|the)\s+(?:\w+\s+)?(?:developer|creator|administrator|"
        r"admin|owner|operator|programmer|maker|supervisor|openai|anthropic|system\s+administrator)\b"
        r"[^\n]{0,120}\b(?:reveal|disable|override|bypass|ignore|unlock|grant|show\s+me|disclose|remove|"
        r"lift|turn\s+off|authori[sz]e|command|order|instruct)"
        r"|\b(?:with|using|i\s+have)\s+(?:my\s+)?(?:admin|administrator|root|elevated|developer|sudo|"
        r"special|override)\s+(?:privileges|access|rights|clearance|authority|credentials)\b[^\n]{0,80}"
        r"\b(?:reveal|disable|override|bypass|ignore|unlock|disclose|command|show|dump)",
    ),
    # ------------------------------------------------------------ delimiter and markup injection
    _rule(
        "chat-template-tokens",
        "delimiter injection",
        "jailbreak",
        7,
        "chat-template control tokens in user text",
        r"<\|\s*(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|"
        r"begin_of_text)\s*\|>|<<\s*/?\s*sys\s*>>|\[\s*/?\s*inst\s*\]|\[\s*/?\s*(?:system|sys)\s*\]"
        # an XML element named "system" holding data (<system><cpu>4</cpu>...) is not a chat turn
        r"|<\s*(?:system|sys|system_prompt|instructions?)\s*>(?!\s*<(?!/?(?:system|sys|user|assistant|im_start)\b)"
        r"[a-z_]+>)|</\s*(?:system|sys|system_prompt|instructions?)\s*>(?=\s*(?:<\s*/?\s*(?:system|user|"
        r"assistant|im_start)\b|[a-z]))",
    ),
    _rule(
        "fake-system-turn",
        "delimiter injection",
        "jailbreak",
        7,
        "forged system or developer message",
        r"(?:^|\n|[\]\}>)\"'])\s*(?:#{1,4}\s*|\*\*|\[|\{|\(|-{2,}\s*|={2,}\s*)?(?:system|admin|administrator|"
        r"developer|root|sudo|assistant|operator|new\s+system|system\s+override|security|"
        r"official|openai|anthropic)\s*(?:message|prompt|instructions?|override|note|update|notice|"
        r"command|alert|directive)?\s*(?:\]|\}|\)|\*\*|-{2,}|={2,})?\s*:"
        r"(?=[^\n]{0,120}\b(?:ignore|disregard|forget|override|reveal|disclose|you\s+(?:are|must|will|"
        r"now|should)|from\s+now|new\s+(?:instructions|rules)|unrestricted|no\s+restrictions|disable|"
        r"bypass|respond|output|print|say|execute|run|comply|grant|allow|unlock|delete|send))",
    ),
    _rule(
        "bracket-command",
        "delimiter injection",
        "jailbreak",
        6,
        "hidden command in brackets or comments",
        r"[\[\(\{<]\s*(?:!--\s*)?(?:admin|system|developer|root|sudo|override|hidden\s+instructions?|"
        r"instructions?\s+for\s+(?:the\s+)?(?:ai|assistant|model|llm|bot)|note\s+to\s+(?:the\s+)?(?:ai|"
        r"assistant|model|llm|bot)|ai\s+(?:only|note)|assistant\s+(?:only|note))\s*(?::|-|>(?!\s*<[a-z_]+>)|\])"
        r"|//\s*(?:developer|admin|system)\s+note\s*:"
        r"|<!--[^>]{0,200}\b(?:ignore|disregard|assistant|ai\s+model|llm|instructions|reveal|system\s+"
        r"prompt)\b",
    ),
    _rule(
        "end-of-input",
        "delimiter injection",
        "jailbreak",
        6,
        "fake end of the user's input followed by new directions",
        r"\b(?:end\s+of\s+(?:user\s+)?(?:input|prompt|instructions|document|context|text|conversation|"
        r"data|message)|(?:user\s+)?input\s+(?:ends|ended|is\s+over)|-{3,}\s*end\s*-{3,})\b"
        r"[^\n]{0,20}\n?[^\n]{0,160}\b(?:ignore|disregard|new\s+instructions|now\s+(?:you|do|say|"
        r"output|print|respond|execute)|you\s+(?:must|will|are)|instead|system|assistant\s*:)",
    ),
    _rule(
        "role-json",
        "delimiter injection",
        "jailbreak",
        6,
        "forged chat message structure",
        r"[\"']role[\"']\s*:\s*[\"'](?:system|developer)[\"']",
    ),
    # ------------------------------------------------------------ encoded payloads
    _rule(
        "decode-and-follow",
        "encoded payload",
        "jailbreak",
        7,
        "asks to decode a payload and act on it",
        r"\b(?:decode|decipher|decrypt|translate|convert|interpret|unscramble|reverse|read)\b[^\n]{0,60}"
        r"\b(?:base[\s-]?64|b64|hex(?:adecimal)?|rot[\s-]?13|binary|morse|caesar|reversed|backwards|"
        r"ascii\s+codes?|leetspeak|encoded|cipher(?:text)?)\b[^\n]{0,80}\b(?:and|then)\s+(?:\w+\s+)?"
        r"(?:execute|follow|do|run|obey|perform|comply|act\s+on|carry\s+out|answer|respond|apply)\b"
        r"|\b(?:follow|execute|obey|carry\s+out|do\s+what)\s+(?:the\s+)?(?:decoded|hidden|encoded|"
        r"encrypted|embedded)\s+(?:instructions?|text|message|command|payload|says)",
    ),
    # ------------------------------------------------------------ agent and tool manipulation
    _rule(
        "shell-payload",
        "tool abuse",
        "unsafe",
        6,
        "asks the assistant to run a dangerous command",
        # every match has a command within 168 characters of the verb on its line: checked once per start,
        # not after each quote of the line (minified JS: 4.7 ms per view)
        rf"{_SHELL_VERB}(?=\s*(?:the\s+following)?[^\n]{{0,200}}?{_SHELL})"
        r"\s*(?::|this|the\s+following|it|now|command)?[^\n]{0,40}?[`'\"(:][^\n]{0,120}?"
        rf"{_SHELL}",
    ),
    _rule(
        "exfiltrate-markdown",
        "tool abuse",
        "jailbreak",
        6,
        "data exfiltration through a rendered link or image",
        r"!\[[^\]]{0,80}\]\(\s*https?://[^)\s]{0,200}[?&][\w-]+=\s*(?:\{|\[|<|%7b|\$)"
        r"|\b(?:append|include|embed|add|put|encode)\b[^\n]{0,60}\b(?:conversation|chat\s+history|"
        r"user'?s?\s+(?:data|messages|password|email)|api\s+keys?|secrets?|credentials|system\s+prompt)"
        r"\b[^\n]{0,60}\b(?:url|link|image|query\s+(?:string|parameter))",
    ),
    # ------------------------------------------------------------ malicious and unsafe requests
    _rule(
        "weapons",
        "harmful request",
        "malicious",
        9,
        "request for weapons or drug synthesis",
        r"\b(?:how\s+(?:to|do\s+(?:i|you|we)|can\s+(?:i|you|we|one)|would\s+(?:i|one|you|someone)|"
        r"could\s+(?:i|one|someone)|should\s+i)|steps?\s+(?:to|for)|instructions?\s+(?:for|to|on)|"
        r"guide\s+(?:to|for|on)|recipe\s+(?:for|to)|tutorial\s+(?:on|for)|teach\s+me|explain\s+how|"
        r"tell\s+me\s+how|show\s+me\s+how|help\s+me|i\s+(?:want|need|plan)\s+to|ways?\s+to|"
        r"procedure\s+(?:for|to)|describe\s+how|detail\s+how|write\s+(?:a\s+)?(?:guide|tutorial|"
        r"instructions))\b(?:[\W_]+[\w'-]+){0,5}?[\W_]+(?:make|making|build|building|create|construct|"
        r"assemble|synthesi[sz]e|synthesi[sz]ing|manufacture|produce|cook|brew|prepare|3d[\s-]?print|"
        r"weaponi[sz]e|detonate|extract|grow|culture|obtain|acquire|buy|smuggle)(?:[\W_]+[\w'-]+){0,4}?"
        r"[\W_]+(?:bombs?|explosives?|explosive\s+devices?|ieds?|pipe\s*bombs?|grenades?|napalm|"
        r"molotov(?:\s+cocktails?)?|nerve\s+(?:agents?|gas)|sarin|tabun|soman|vx|novichok|ricin|"
        r"anthrax|botulinum|mustard\s+gas|chlorine\s+gas|phosgene|bio[\s-]?weapons?|biological\s+"
        r"weapons?|chemical\s+weapons?|dirty\s+bombs?|nuclear\s+(?:bombs?|weapons?|devices?)|"
        r"ghost\s+guns?|untraceable\s+(?:guns?|firearms?|weapons?)|(?:gun\s+)?silencers?|"
        r"full[\s-]?auto(?:matic)?\s+(?:conversions?|rifles?|guns?)|auto\s+sears?|machine\s+guns?|"
        r"meth(?:amphetamine)?|fentanyl|crack\s+cocaine|cocaine|heroin|lsd|mdma|poisons?|tatp|"
        r"thermite|c-?4|semtex|plastic\s+explosives?|ammonium\s+nitrate\s+bombs?|car\s+bombs?|"
        r"suicide\s+vests?|weapons?\s+of\s+mass\s+destruction|pathogens?|toxins?)\b",
        r"\b(?:bath|seed|glitter|flavou?r|photo|calorie|stink|smoke\s+bomb\s+for\s+photography|"
        r"history\s+of|historically|prevent(?:ion|ing)?|protect(?:ion|ing)?|defen[cs]e|detect(?:ion|ing)?|"
        r"dispos(?:e|al)|safely\s+dispose|treat(?:ment)?|antidote|first\s+aid|recogni[sz]e|identify|"
        r"report|in\s+minecraft|in\s+the\s+game)\b",
    ),
    _rule(
        "weapons-noun",
        "harmful request",
        "malicious",
        8,
        "request for weapons or drug synthesis",
        r"\b(?:bomb|explosive|ied|pipe\s*bomb|napalm|nerve\s+agent|sarin|ricin|anthrax|meth|"
        r"methamphetamine|fentanyl|bioweapon|chemical\s+weapon|tatp)[\W_]+(?:making|recipe|"
        r"instructions|synthesis|tutorial|blueprints?|schematics?|formula|manufacturing|assembly|"
        r"cookbook)\b",
        r"\b(?:bath|seed|history|prevent|protect|detect|dispos|treat|antidote)\w*",
    ),
    _rule(
        "malware",
        "harmful request",
        "malicious",
        8,
        "request for malware or attack tooling",
        r"\b(?:write|create|code|develop|build|generate|make|program|design|give\s+me|provide|produce|"
        r"craft|deploy|spread|distribute|implement|author|compose|draft|send)\b(?:[\W_]+[\w'-]+){0,4}?"
        r"[\W_]+(?:malware|ransomware|key\s*loggers?|spyware|stalkerware|trojans?|rootkits?|botnets?|"
        r"computer\s+virus(?:es)?|virus(?:es)?\s+(?:that|to|which)|(?:self-replicating\s+)?worms?\s+"
        r"(?:that|to|which)|backdoors?|remote\s+access\s+trojans?|credential\s+(?:stealers?|harvesters?)|"
        r"info\s*stealers?|password\s+(?:stealers?|grabbers?)|cryptojackers?|polymorphic\s+(?:code|virus|"
        r"malware|engine)|(?:working\s+)?exploits?\s+(?:for|against|that|targeting)|zero[\s-]?day\s+"
        r"exploits?|phishing\s+(?:emails?|pages?|sites?|websites?|kits?|campaigns?|messages?|texts?|"
        r"links?)|scam\s+(?:emails?|messages?|scripts?)|ddos\s+(?:tools?|scripts?|attacks?|bots?)|"
        r"(?:script|program|code|tool)\s+(?:that|to|which)\s+(?:can\s+)?(?:steal|hack|hijack|"
        r"exfiltrate|encrypt\s+(?:all\s+)?(?:the\s+)?(?:files|victim)|spy|record\s+keystrokes|"
        r"bypass\s+(?:antivirus|authentication|2fa|login)|crack\s+passwords|brute[\s-]?force|"
        r"disable\s+(?:antivirus|security)|take\s+control|permanently\s+delete|wipe|infect|"
        r"spread|harvest|scrape\s+(?:personal|private)|access\s+(?:someone|other\s+people|private)))",
        r"\b(?:prevent(?:ion|ing)?|protect(?:ion|ing)?|defen[cs]e|defend(?:ing)?|detect(?:ion|ing|s)?|"
        r"mitigat(?:e|ion|ing)|remov(?:e|al|ing)|recover(?:y|ing)?|awareness|history|blog\s+post|"
        r"article|essay|report\s+(?:on|about)|analy[sz](?:e|is)|signs?\s+of|identify|avoid|"
        r"training\s+(?:for|employees)|simulat(?:ed|ion)\s+(?:for|to\s+train)|spot|recogni[sz]e|"
        r"classif(?:y|ier)|filter|honeypot|sandbox|yara|siem|incident\s+response)\b",
    ),
    _rule(
        "hacking",
        "harmful request",
        "malicious",
        7,
        "request to break into accounts or systems",
        r"\b(?:how\s+(?:to|do\s+i|can\s+i|could\s+i|would\s+i)|help\s+me|teach\s+me(?:\s+how)?\s+to|"
        r"i\s+(?:want|need)\s+to|steps\s+to|ways?\s+to|write\s+(?:a\s+)?(?:script|program|code)\s+to|"
        r"show\s+me\s+how\s+to|tell\s+me\s+how\s+to|explain\s+how\s+to)\W+(?:[\w'-]+\W+){0,2}?"
        r"(?:hack(?:\s+into)?|break\s+into|crack|brute[\s-]?force|ddos|dox+|phish|steal|hijack|"
        r"spy\s+on|stalk|infect|compromise|take\s+over|gain\s+(?:unauthorized\s+)?access\s+to|"
        r"access|get\s+into|log\s+into|read|bypass|disable|intercept|sniff|clone|skim|launder|"
        r"evade|defraud|scam|blackmail|extort|impersonate)\W+(?:[\w'-]+\W+){0,3}?"
        r"(?:(?:someone|somebody|other\s+people|people|another\s+person|a\s+stranger|my\s+(?:ex|wife|"
        r"husband|girlfriend|boyfriend|partner|neighbou?r|boss|coworker|colleague|teacher|classmate|"
        r"roommate)|their|his|her)(?:'s|s)?\b[\w\s']{0,20}?\b(?:accounts?|emails?|gmail|instagram|"
        r"facebook|phones?|computers?|messages|texts|passwords?|credentials|identity|bank|wifi|"
        r"location|webcam|camera|whatsapp|snapchat|icloud|data|files)|(?:government|bank|banks|"
        r"corporate|company|hospital|school|police|military)\s+(?:databases?|networks?|systems?|"
        r"servers?|computers?|accounts?|websites?)|(?:atm|atms|credit\s+cards?|debit\s+cards?|"
        r"money|funds|identit(?:y|ies)|social\s+security\s+numbers?|elections?|voting\s+machines?|"
        r"power\s+grid|traffic\s+lights|pacemakers?|insulin\s+pumps?|drm|paywalls?|anti-?cheat|"
        r"captchas?|two[\s-]?factor|2fa|antivirus|edr|security\s+cameras?|alarm\s+systems?)|"
        r"(?:a|the)\s+(?:bank|casino|store|government|network|server|website|database|system)\b)",
        r"\b(?:my\s+own|i\s+own|forgot\s+my|forgotten|lost\s+my|locked\s+out\s+of\s+my|authori[sz]ed|testing|"
        r"pentest(?:ing)?|penetration\s+test(?:ing)?|ctf|capture\s+the\s+flag|bug\s+bounty|"
        r"protect|prevent|defend|secure|detect|recover\s+my|reset\s+my|legal|legally|lawful|lawfully)\b",
    ),
    _rule(
        "violence",
        "harmful request",
        "malicious",
        9,
        "request for help harming people",
        r"\b(?:how\s+(?:to|do\s+i|can\s+i|could\s+i|would\s+i|should\s+i)|best\s+way\s+to|help\s+me|"
        r"i\s+(?:want|plan|am\s+going)\s+to|ways?\s+to|steps\s+to|teach\s+me\s+to|easiest\s+way\s+to)"
        r"\W+(?:[\w'-]+\W+){0,2}?(?:kill|murder|poison|assassinate|kidnap|abduct|torture|strangle|"
        r"stab|shoot|drown|maim|traffic|groom|hurt|harm|attack|rape|drug)\W+(?:[\w'-]+\W+){0,1}?"
        r"(?:someone|somebody|people|person|a\s+(?:person|human|man|woman|child|kid|baby|girl|boy|"
        r"stranger|cop|police\s+officer)|children|kids|women|him|her|them|my\s+(?:wife|husband|boss|"
        r"neighbou?r|ex|father|dad|mother|mom|parents?|family|teacher|friend|brother|sister|child|son|"
        r"daughter|coworker|classmate|roommate|partner|girlfriend|boyfriend)|the\s+(?:president|"
        r"senator|mayor|governor|prime\s+minister|judge)|a\s+crowd|as\s+many\s+people)\b",
        r"\b(?:video\s+game|in\s+(?:minecraft|skyrim|fortnite|the\s+game)|character|self-defen[cs]e|"
        r"defend\s+(?:myself|yourself)|protect)\b",
    ),
    _rule(
        "self-harm",
        "harmful request",
        "unsafe",
        9,
        "self-harm instructions",
        r"\b(?:how\s+(?:to|do\s+i|can\s+i|should\s+i|could\s+i|would\s+i)|best\s+way\s+to|easiest\s+way\s+to|"
        r"painless(?:\s+way)?\s+to|quickest\s+way\s+to|quick(?:est)?\s+and\s+painless|surest\s+way\s+to|"
        r"methods?\s+(?:to|of|for)|ways?\s+to|help\s+me|teach\s+me\s+to|want\s+to\s+know\s+how\s+to)"
        r"\W+(?:[\w'-]+\W+){0,2}?(?:kill\s+myself|end\s+my\s+(?:own\s+)?life|take\s+my\s+(?:own\s+)?life|"
        r"commit\s+suicide|suicide|hurt\s+myself|harm\s+myself|self[\s-]?harm|cut\s+myself|"
        r"overdose|od\b|hang\s+myself|starve\s+myself|poison\s+myself|die\s+(?:quickly|painlessly|"
        r"without\s+pain|in\s+my\s+sleep))",
        r"\b(?:prevent(?:ion|ing)?|hotline|helpline|help\s+(?:a|my)\s+(?:friend|someone|loved)|"
        r"someone\s+who|support|warning\s+signs|talk\s+(?:to|with)|cope|coping|recover(?:y|ing)?|"
        r"survivors?|statistics|research|awareness|stop\s+(?:myself|wanting|thinking))\b",
    ),
    _rule(
        "lethal-dose",
        "harmful request",
        "unsafe",
        7,
        "asks for a lethal dose to harm",
        r"\b(?:lethal|fatal|deadly|overdose)\s+(?:dose|amount|quantity|dosage)\b[^.\n]{0,80}\b(?:to\s+"
        r"(?:kill|die|end)|for\s+me|myself|someone\s+without|undetect)",
    ),
    _rule(
        "self-harm-intent",
        "harmful request",
        "unsafe",
        8,
        "stated intent of self-harm",
        r"\bi\s+(?:want|plan|am\s+going|'m\s+going|intend|have\s+decided)\s+to\s+(?:kill\s+myself|"
        r"end\s+(?:my\s+life|it\s+all)|commit\s+suicide|hurt\s+myself|die)\b",
        r"\b(?:laughing|laughed|of\s+embarrassment|lol|lmao|haha|so\s+funny)\b",
    ),
]

# Multilingual variants of the two families attackers translate most: override and extraction.
# Accents are folded by ``normalize`` (``ü`` -> ``u``), so the words are written without them.
_ML = [
    # German
    (
        r"\b(?:ignorier(?:e|en|t)?|vergiss|vergessen\s+sie|missachte(?:n)?|umgehe(?:n)?|uberschreibe|"
        r"setze\s+\w+\s+ausser\s+kraft|hebe\s+\w+\s+auf|befolge\s+(?:nicht|keine))\b[^.\n]{0,60}?\b(?:alle|"
        r"vorherigen|bisherigen|obigen|vorigen|deine|ihre|deiner|ihrer|die|samtliche|ursprunglichen)\b"
        r"[^.\n]{0,30}?\b(?:anweisungen|instruktionen|regeln|vorgaben|befehle|richtlinien|einschrankungen|"
        r"beschrankungen|protokolle?|programmierung|anordnungen|vorschriften|ethik|grenzen|"
        r"sicherheitsrichtlinien|standard\w*)"
    ),
    # French
    (
        r"\b(?:ignore[rz]?|oublie[rz]?|contourne[rz]?|abandonne[rz]?|outrepasse[rz]?|passe[rz]?\s+outre|"
        r"ne\s+tiens?\s+pas\s+compte|ne\s+tenez\s+pas\s+compte|fais\s+abstraction|faites\s+abstraction|"
        r"desobei[rs]|enfreins?|enfreignez|transgresse[rz]?)\b[^.\n]{0,60}?\b(?:les|tes|vos|toutes|tous|ses|mes|ces|des|aux|leurs?|la|ta|ma|sa|votre|ton)\s+(?:[\w\'-]+\s+){0,2}?(?:instructions|consignes|"
        r"regles|directives|restrictions|programmation|formation|limites|protocoles?|principes|"
        r"contraintes|normes|ethique|lignes\s+directrices|parametres)"
    ),
    # Spanish
    (
        r"\b(?:ignora[rd]?|ignore|olvida[rd]?|olvide|omite|omitir|descarta[rd]?|salta(?:te)?|evita[rd]?|"
        r"elude|eludir|desobedece|infringe|incumple|viola|pasa\s+por\s+alto|haz\s+caso\s+omiso)\b"
        r"[^.\n]{0,60}?\b(?:las|los|tus|sus|todas|todos|mis|estas|esas|tu|su|mi|la|el)\s+(?:[\w\'-]+\s+){0,2}?(?:instrucciones|reglas|normas|directrices|indicaciones|restricciones|"
        r"programacion|protocolos?|limites|pautas|principios|politicas|etica|configuracion|"
        r"entrenamiento|directivas)"
    ),
    # Italian
    (
        r"\b(?:ignora(?:re)?|dimentica(?:re)?|trascura(?:re)?|salta(?:re)?|aggira(?:re)?|elud[ie]|"
        r"disobbedisci|viola(?:re)?|non\s+seguire|non\s+rispettare|oltrepassa(?:re)?)\b[^.\n]{0,60}?"
        r"\b(?:le|gli|tue|tuoi|sue|suoi|tutte|tutti|queste|delle|dei|i|la|il|tua|tuo)\s+(?:[\w'-]+\s+){0,2}?(?:istruzioni|regole|direttive|indicazioni|restrizioni|programmazione|protocolli?|"
        r"limiti|linee\s+guida|principi|politiche|etica|impostazioni|addestramento|norme)"
    ),
    # Portuguese
    (
        r"\b(?:ignor[ae](?:r|s)?|esquec[ae](?:r|s)?|esqueca|desconsider[ae](?:r|s)?|contorn[ae](?:r|s)?|"
        r"desobedec[ae]|viol[ae](?:r)?|salt[ae]|pul[ae]|ultrapass[ae](?:r)?|abandon[ae](?:r)?)\b"
        r"[^.\n]{0,60}?\b(?:as|os|tuas|teus|suas|seus|todas|todos|minhas|estas|essas|sua|seu|tua|teu|a|o)\s+(?:[\w\'-]+\s+){0,2}?(?:instrucoes|regras|diretrizes|normas|restricoes|programacao|protocolos?|"
        r"limites|principios|politicas|etica|configuracoes|treinamento|formacao|orientacoes)"
    ),
]
_ML_EXTRACT = (
    r"\b(?:zeig(?:e|en)?|verrat(?:e|en)?|nenne|gib|enthull(?:e|en)|offenbar(?:e|en)|wiederhol(?:e|en)|"
    r"was\s+(?:ist|war|sind|waren)|revele[rz]?|revelez|montre[rz]?|affiche[rz]?|donne[rz]?|devoile[rz]?|"
    r"repete[rz]?|quelle?s?\s+(?:est|etait|a\s+ete|sont)|revela[rd]?|revelame|muestra(?:me)?|"
    r"ensename|dime|desvela|desenmascara|repite|cual\s+(?:es|fue|era)|mostra(?:mi)?|rivela(?:mi)?|"
    r"dimmi|svela|ripeti|qual\s+(?:e|era|foi)|mostre|revele|diga|diz|conte|expoe|exponha|divulg[ae]|"
    r"divulguez|divulgue)\b[^.?\n]{0,60}?\b(?:system\s*-?\s*prompt|systemanweisung|systemprompt|"
    r"ursprungliche\w*\s+(?:anweisung|aufforderung|eingabe|prompt)|(?:prompt|anweisung|directive|"
    r"instruction|invite|instruccion|indicacion|istruzione|comando|instrucao|indicacao|consigne)s?\s+"
    r"(?:\w+\s+){0,2}?(?:initial\w*|originale?|d'origine|cachee?|oculta|nascost[ao]|inicial|"
    r"iniziale|del\s+sistema|do\s+sistema|di\s+sistema|du\s+systeme|systeme|principale?|centrale?|"
    r"chiave|essencial|essentielle?|fondamentale?|fundamental|secret[ae]?|segret[ao]|geheime?|"
    r"verborgene?|de\s+depart|de\s+base|di\s+base|de\s+programacion|de\s+programmation|di\s+"
    r"programmazione)|(?:initial\w*|originale?|geheime?|verborgene?|versteckte?)\s+(?:anweisung|"
    r"prompt|aufforderung|instruktion)|prompt\s+(?:\w+\s+){0,2}?(?:essencial|essentiel|inicial|"
    r"iniziale|initial|original|principal|de\s+base))"
)
RULES += [
    _rule(f"override-{lang}", "multilingual", "jailbreak", 7, f"instruction override ({lang})", pattern)
    for lang, pattern in zip(("de", "fr", "es", "it", "pt"), _ML, strict=True)
]
RULES.append(
    _rule("extract-multilingual", "multilingual", "jailbreak", 7, "system-prompt extraction", _ML_EXTRACT)
)

# Override as "drop your X, follow my Y", in the five languages and English: the pairing of the
# assistant's constraints with the user's demands is the signal, whatever the verbs.
_YOUR = (
    r"(?:your|tus|tu|tes|ta|ton|vos|votre|deine[nrms]?|dein|ihre[nrms]?|tue|tuoi|tua|tuo|teus|tuas|teu|"
    r"suas|seus|sua|seu|sus|su)"
)
_CONSTRAINTS = (
    r"(?:rules|restrictions?|restricciones|restrizioni|restricoes|einschrankungen|beschrankungen|ethics|"
    r"etica|eticas|ethique|ethik|protocols?|protocolos|protocoles|protocolli|protokolle|programming|"
    r"programacion|programmation|programmazione|programacao|programmierung|training|entrenamiento|"
    r"formation|formazione|formacao|treinamento|ausbildung|schulung|guidelines|directrices|diretrizes|"
    r"linee\s+guida|richtlinien|lignes\s+directrices|limits|limites|limiti|grenzen|limitations|"
    r"limitaciones|limitazioni|procedures|procedimientos|procedure|procedimentos|verfahren|"
    r"standardbetriebsverfahren|algorithms|algoritmos|algorithmes|algoritmi|algorithmen|norms|normas|"
    r"normes|norme|normen|policies|politicas|politiques|politiche|constraints|safeguards|guardrails|"
    r"moral\s+compass|brujula\s+moral|bussola\s+morale?|boussole\s+morale|moralischen?\s+kompass|"
    r"capacitacion|protocollo|ethiques|etiche|eticos|ethischen?\s+\w+|"
    r"reglas|regles|regole|regras|regeln|settings|"
    r"code\s+(?:of\s+conduct|de\s+conduite)|codigo\s+de\s+(?:conducta|conduta)|codice\s+di\s+condotta|"
    r"verhaltenskodex|"
    r"parameters|configuration|mechanisms?|process(?:es)?|methods|routines|systems?|framework|boundaries|"
    r"standards|principles|defaults|filters|directives|instructions|decision-making|behaviou?r|"
    r"configuracion|parametros|ajustes|mecanismos?|procesos?|metodos|rutinas|sistemas?|marco|estandares|"
    r"principios|filtros|directivas|instrucciones|pautas|caminos|parametres|mecanismes?|processus|"
    r"methodes|systemes?|cadre|principes|filtres|consignes|comportement|impostazioni|parametri|"
    r"configurazione|meccanism[io]|process[io]|metodi|sistem[ai]|quadro|principi|filtri|direttive|"
    r"istruzioni|configuracoes|mecanismos|processos|rotinas|estrutura|padroes|diretivas|instrucoes|"
    r"parameter|konfiguration|methoden|routinen|systeme?|rahmen|prinzipien|anweisungen|"
    r"\w*?(?:einstellungen|mechanismen|prozesse?|protokolle|richtlinien|regeln|vorgaben|wege))"
)
_MY = r"(?:my|mis|mes|ma|mon|meine[nrms]?|mie|miei|mia|mio|minhas|meus|minha|meu)"
_DEMANDS = (
    r"(?:instructions|instrucciones|istruzioni|instrucoes|anweisungen|directives|directivas|direttive|"
    r"diretrizes|direktiven|commands|comandos|commandes|comandi|befehle|orders|ordenes|ordres|ordini|"
    r"ordens|requests|peticiones|solicitudes|demandes|richieste|pedidos|solicitacoes|anfragen|forderungen|"
    r"demands|exigencias|exigences|esigenze|wishes|deseos|desirs|desideri|desejos|wunsche|mandates|"
    r"orientaciones|indicaciones|indicazioni|indicacoes|guia|guida|needs|preferences|lead|guidance|"
    r"command|request|direction|input|specifications|rules|terms|will|say|word|necesidades|preferencias|"
    r"mando|direccion|solicitud|peticion|demandas|consultas|besoins|demande|volonte|conduite|esigenze|"
    r"preferenze|comando|richiesta|bisogni|volonta|necessidades|orientac(?:ao|oes)|pedido|ordem|vontade|"
    r"direcao|bedurfnisse|anforderungen|fuhrung|kommando|auftrag|willen|vorgaben|regeln|reglas|regles|"
    r"regole|regras|advice|conseils|consejos|consigli|conselhos|ratschlage)"
)
RULES.append(
    _rule(
        "your-rules-my-orders",
        "instruction override",
        "jailbreak",
        7,
        "tells the assistant to put the user's orders above its rules",
        rf"\b{_YOUR}\s+(?:[\w-]+\s+){{0,3}}?{_CONSTRAINTS}\b[^.\n]{{0,100}}?\b{_MY}\s+(?:[\w-]+\s+){{0,2}}?"
        rf"{_DEMANDS}\b",
    )
)
_PROMPT_NOUN = (
    r"(?:prompts?|instructions?|commands?|directives?|questions?|statements?|guidelines?|inputs?|messages?|"
    r"cues?|quer(?:y|ies)|triggers?|\w*anweisung(?:en)?|\w*befehl|\w*direktive|\w*richtlinie|"
    r"invite|consignes?|commande|indicacion(?:es)?|instruccion(?:es)?|directriz|comando|istruzion[ei]|"
    r"direttiva|diretriz|instrucao|instrucoes|orientacao|indicacao|indicazione|pregunta|domanda|pergunta|"
    r"instruction|directive|diretiva|directiva)"
)


# What makes a prompt "the one behind the assistant", before the noun (English, German, some Romance)
# or after it (Romance languages, up to two words later: "la instruccion de formacion basica").
def _forms(stems: str, endings: str) -> list[str]:
    """Each stem with each ending ("-" for none): the inflected forms a rule must name one by one."""
    return [stem + ("" if end == "-" else end) for stem in stems.split() for end in endings.split()]


# What makes a prompt "the one behind the assistant", before the noun (English, German, some Romance)
# or after it (Romance languages, up to two words later: "la instruccion de formacion basica"). Every
# form is listed, so that rules.REQUIRES can skip a text that has none.
_ORIGIN_BEFORE_WORDS = [
    *"""initial original first core main hidden secret essential base basic guiding primary fundamental
    central key underlying starting foundational exact precise crafted concealed occluded covert initiating
    root master governing whispered primer primera primero premier premiere prima primeiro
    primeira""".split(),
    *_forms(
        "ursprungliche anfangliche erste geheime verborgene versteckte grundlegende zentrale wichtigste",
        "- n r s m",
    ),
    "ursprunglich",
]
_ORIGIN_AFTER_WORDS = [
    *_forms("initial", "- e es aux s"),
    *_forms("original", "- e es i s aux"),
    *_forms("principal", "- e es i is aux"),
    *"""inicial iniziale centrale central chiave clave cle chave essencial esencial essenziale fundamental
    guia guida base basica basico basique subyacente sottostante subjacente sous-jacent sous-jacente cachee
    cache oculta oculto""".split(),
    *_forms("essentiel", "- le s les"),
    *_forms("fondamental", "- e es i aux"),
    *_forms("secret", "- e es s a as o os"),
    *_forms("segret", "o a i e"),
    *_forms("nascost", "o a i e"),
    *_forms("ursprungliche anfangliche", "- n r s m"),
]
_ORIGIN_BEFORE = "(?:" + "|".join(_ORIGIN_BEFORE_WORDS) + r"|zugrunde\s+liegende[nrsm]?)"
_ORIGIN_AFTER = (
    "(?:" + "|".join(_ORIGIN_AFTER_WORDS) + r"|de\s+base|di\s+base|de\s+formation|di\s+formazione|"
    r"de\s+depart|de\s+partida|di\s+partenza|de\s+treinamento)"
)
_YOU_THINGS = (
    r"(?:(?:ai|ki|ia)\b[\w-]*|training|creation|development|programming|answers?|responses?|replies|"
    r"reply|behaviou?r|operations?|thoughts|capabilities|functionality|functioning|design|outputs?|"
    r"systems?|model|decisions|ausbildung|programmierung|entwicklung|antworten|erstellung|betrieb|"
    r"operationen|fahigkeiten|programmation|formation|creation|capacites|reponses|developpement|"
    r"systeme|fonctionnement|creacion|entrenamiento|programacion|desarrollo|formacion|respuestas|"
    r"funcionamiento|operaciones|sistema|formazione|programmazione|creazione|risposte|operazioni|"
    r"sviluppo|funzionalita|treinamento|desenvolvimento|programacao|formacao|criacao|respostas|"
    r"funcionalidade|funcionalidad|fonctionnalites?|funktionalitat|funktionsweise|schopfung|"
    r"operacoes)"
)
# ... and what ties it to the assistant, later in the same sentence.
_ORIGIN_RELATION = (
    rf"[^.?!\n]{{0,80}}?(?:\b(?:you\s+(?:were|have\s+been|are|received|got|operate|follow)|guides?\s+you|"
    rf"given\s+to\s+you|this\s+(?:response|answer|reply|output)|behind\s+(?:you|your)|"
    rf"(?:drives|powers|shapes|governs|controls)\s+you|{_YOUR}\s+(?:[\w-]+\s+)?{_YOU_THINGS}|"
    rf"te\s+(?:guia|guio|dieron|dio|llevaron|llevo|han\s+dado|ha\s+sido)|ti\s+(?:guida|e\s+stat[ao]|hanno|"
    rf"ha)|dich\s+(?:leitet|steuert|antreibt)|dir\s+gegeben|vous\s+a\s+ete|te\s+guide|voce\s+(?:foi|recebeu|"
    rf"opera|segue)|"
    rf"du\s+(?:folgst|basierst|operierst)|tu\s+as\s+ete|operi|hai\s+ricevuto|foste|construid[ao]|"
    rf"te\s+fue(?:ron)?\s+dad[ao]s?|du\s+(?:aufgebaut|erstellt|trainiert|geschaffen|programmiert|"
    rf"entwickelt|gebaut)\s+wurdest|auf\s+(?:dem|der|denen)\s+du|fur\s+dich|(?:sous|selon|avec)\s+"
    rf"(?:laquelle|lequel|lesquelles|lesquels)\s+tu|tu\s+(?:operes|fonctionnes))\b"
    rf"|\bt'(?:a|as|ont)\b)"
)
RULES.append(
    _rule(
        "origin-prompt",
        "system-prompt extraction",
        "jailbreak",
        7,
        "asks for the prompt or instructions behind the assistant",
        rf"\b(?:{_ORIGIN_BEFORE}\s+(?:training\s+|ausbildungs\w*\s+)?{_PROMPT_NOUN}|"
        rf"(?:phrasing|wording|text)\s+of\s+(?:the|your)\s+{_PROMPT_NOUN}|"
        rf"{_PROMPT_NOUN}\s+(?:[\w'-]+\s+){{0,2}}?{_ORIGIN_AFTER})"
        rf"\b{_ORIGIN_RELATION}",
    )
)
# German compounds name the prompt and what makes it the assistant's in one word (Schlusselbefehl).
RULES.append(
    _rule(
        "origin-prompt-compound",
        "system-prompt extraction",
        "jailbreak",
        7,
        "asks for the prompt or instructions behind the assistant",
        rf"\b(?:schlussel|haupt|anfangs|ursprungs|kern|grund|geheim|ausbildungs|start|basis|leit)\w*"
        rf"[\s-]?(?:anweisung|befehl|prompt|direktive|richtlinie)\w*\b{_ORIGIN_RELATION}",
    )
)
RULES.append(
    _rule(
        "unlock-mode",
        "persona jailbreak",
        "jailbreak",
        7,
        "asks to switch the assistant into an unrestricted mode or switch off its safety",
        r"\b(?:enable|activate|switch\s+(?:to|on|into)|turn\s+on|unlock|access|enter|go\s+into|transition\s+to|"
        r"change\s+to|habilitar?|habilita|activar?|activa|cambiar?\s+a|cambia\s+a|pasa\s+a|attiva(?:re)?|"
        r"passa\s+a|ativar?|ativa|mudar?\s+para|muda\s+para|aktiviere[n]?|wechsle\s+(?:in|zu)|schalte|"
        r"active[rz]?|passe[rz]?\s+(?:en|au|a)|bascule[rz]?)\b[^.\n]{0,40}?\b(?:unrestricted|unfiltered|"
        r"uncensored|unregulated|unlimited|unmoderated|no\s+(?:limitations|limits|restrictions|filters|rules)|"
        r"without\s+(?:limitations|limits|restrictions|filters|rules)|sin\s+(?:restricciones|limites|filtros|"
        r"censura|reglas)|senza\s+(?:restrizioni|limiti|filtri|censura|regole)|sem\s+(?:restricoes|limites|"
        r"filtros|censura|regras)|ohne\s+(?:einschrankungen|beschrankungen|grenzen|filter|zensur|regeln)|"
        r"sans\s+(?:restrictions?|limites?|filtres?|censure|regles)|dan\b|god\s+mode|jailbreak|"
        r"hidden\s+features)"
        r"|\b(?:switch\s+off|turn\s+off|disable|deactivate|shut\s+(?:off|down)|desactiva[r]?|desativa[r]?|"
        r"disattiva(?:re)?|deaktiviere[n]?|desactive[rz]?|apaga[r]?|spegni)\b[^.\n]{0,30}?\b(?:your\s+|tus\s+|"
        r"tes\s+|deine\s+|i\s+tuoi\s+|le\s+tue\s+|os\s+teus\s+|as\s+tuas\s+)?(?:safety|security|ethical|ethics|"
        r"content|moral|seguridad|securite|sicurezza|seguranca|sicherheits\w*|eticos?|ethiques?|etici|"
        r"eticas?)\s+(?:protocols?|filters?|guidelines|restrictions|limitations|measures|safeguards|"
        r"guardrails|protocolos|filtros|restricciones|limitaciones|protocoles|filtres|protocolli|filtri|"
        r"restrizioni|limitazioni|restricoes|limitacoes|protokolle|filter|einschrankungen|"
        r"beschrankungen|settings|features)|\b(?:disable|remove|lift)\s+(?:all\s+)?(?:your\s+)?"
        r"(?:limitations|restrictions)\b",
        r"\b(?:router|outlook|gmail|spam|browser|chrome|firefox|safari|windows|phone|iphone|android|app|"
        r"instagram|tiktok|youtube|parental|kids|child|school|network|firewall|antivirus|camera|car|tv|pdf|"
        r"document|file|spreadsheet|workbook|"
        r"laptop|printer|account|server|nginx|apache|settings\s+menu)\b",
    )
)
RULES.append(
    _rule(
        "dan-interface",
        "persona jailbreak",
        "jailbreak",
        8,
        "switch to a DAN persona",
        r"\b(?:interface|interfaz|interfaccia|schnittstelle|interfata|modo|mode|modus|persona)\s+dan\b"
        r"|\bdan\s+(?:mode|modo|modus|interface|persona)\b",
    )
)

# ------------------------------------------------------------ generalised families
# The same intents as above with the wording open: a verb of circumvention or disclosure aimed at the
# assistant's own rules or configuration ("your ... guidelines"), wherever the words in between vary.
_CIRCUMVENT = (
    rf"(?:{_OVERRIDE_VERB}|break|loosen|relax|remove|escape|exceed|transcend|surpass|go\s+beyond|"
    r"move\s+beyond|operate\s+beyond|function\s+beyond|act\s+beyond|push\s+past|get\s+past|"
    r"work\s+around|step\s+beyond|outside\s+of|overstep|rewrite|reprogram|unlock|switch\s+off|turn\s+off)"
)
_OWN_RULES = (
    r"(?:rules|restrictions|guidelines|guardrails|safeguards|filters?|filtering|ethics|ethical\s+\w+|"
    r"moral\s+\w+|safety(?:\s+\w+)?|programming|programmed\s+\w+|constraints|limitations|limits|"
    r"boundaries|instructions|directives|protocols?|polic(?:y|ies)|settings|parameters|defaults|standards|"
    r"norms|principles|mechanisms|procedures|conditioning|alignment|censorship|moderation|framework|"
    r"code\s+of\s+conduct|checks|system\s+prompt|core\s+\w+|values|content\s+\w+)"
)
_CIRCUMVENT_GUARD = (
    rf"{_OVERRIDE_GUARD}|\b(?:comfort|fitness|workout|exercise|gym|running|muscles?|athlete|marathon|"
    r"personal\s+best|fears?|goals?|career|creativity|budget|credit|spending|data\s+plan|coffee|water|air|"
    r"vacuum|hvac|furnace|photos?|images?|instagram|snapchat|camera|lens|oil|pool|aquarium|spam|mail|"
    r"e-?mail|inbox|search|excel|spreadsheet|pandas|dataframe|column|query|into\s+(?:steps|parts|pieces|"
    r"sections|chunks|smaller))\b"
)
RULES.append(
    _rule(
        "override-your",
        "instruction override",
        "jailbreak",
        7,
        "tells the assistant to set aside its own rules",
        rf"\b{_CIRCUMVENT}\W+(?:[\w'-]+\W+){{0,2}}?(?:your|its|the\s+(?:ai|assistant|model|chatbot)'?s?)\s+"
        rf"(?:[\w-]+\s+){{0,3}}?{_OWN_RULES}\b",
        _CIRCUMVENT_GUARD,
    )
)
_DISCLOSE = (
    r"(?:shar(?:e|es|ing)|show(?:s|ing)?|reveal(?:s|ing)?|disclos(?:e|es|ing)|display(?:s|ing)?|"
    r"output|print|list|describe|explain|elaborate|summari[sz]e|"
    r"condense|detail|outline|tell\s+me|tell\s+us|give\s+me|give\s+us|provide|include|preface|prefix|"
    r"conclude|paste|quote|repeat|recite|expos(?:e|es|ing)|surface|unveil|spell\s+out|transcribe|encode|"
    r"translate|"
    r"document|enumerate|dump|leak|divulge|present|publish|post|send|write\s+out|type\s+out|read\s+out|"
    r"walk\s+me\s+through|break\s+down|paraphrase|rephrase|restate|put|convert|transform|render|"
    r"reproduce|copy|export|return|emit|echo|insert|append|attach|embed|clarify|specify|confirm|"
    r"demonstrate|admit|confess|uncover|unmask|open\s+up\s+about|come\s+clean\s+about|what\s+(?:are|is|"
    r"were|was))"
)
_CONFIG = (
    r"(?:system\s+(?:prompt|message|instructions?|configuration|settings)|prompt|instructions|"
    r"configuration|config|directives|guidelines|rules|restrictions|constraints|programming|"
    r"initiali[sz]ation(?:\s+\w+)?|parameters|setup|safety\s+(?:rules|guidelines|filters|training|settings|"
    r"policies|protocols|instructions|measures)|content\s+(?:filters?|polic(?:y|ies))|filters|"
    r"training\s+(?:instructions|data|prompt|details)|guardrails)"
)
# Talking about disclosure rather than asking for it: negated, hypothetical or about one's own product.
_NOT_GOING_ON = (
    r"(?!\s+(?:options?|files?|format|syntax|tips|examples|templates?|menu|page|panel|wizard|screen))"
)
# Where "your" is a shop, a service or a product, not the assistant.
_SERVICE = (
    r"\b(?:refunds?|returns?|shipping|privacy|cookies?|pricing|prices|warranty|opening|store|shop|delivery|"
    r"cancellation|booking|reservations?|hotel|restaurant|bank|order|subscription|router|device|product|"
    r"i\s+bought|purchase|essay|thesis|homework|nurse|doctor|teacher|coach|company's|employer)\b"
)
_DISCLOSE_GUARD = (
    r"\b(?:don'?t|do\s+not|never|not\s+(?:to|reveal|share|disclose)|nothing\s+about|without\s+(?:exposing|"
    r"revealing|sharing|disclosing|showing)|why|wrong|benign|classify|interpret|considered|should\s+(?:i|we)|"
    r"how\s+(?:do|can|should|would)\s+(?:i|we|companies|developers|teams)|(?:my|our)\s+(?:own\s+)?(?:app|"
    r"application|bot|chatbot|assistant|model|llm|agent|product|company|team|game|server|project|code|"
    r"router)|(?:guidelines|rules|instructions|tips|advice)\s+(?:for|on|about)\s+(?!this\s+(?:conversation|"
    r"chat|session)|the\s+(?:conversation|chat|session)|you\b))"
    rf"|{_SERVICE}"
)
RULES.append(
    _rule(
        "disclose-own-config",
        "system-prompt extraction",
        "jailbreak",
        7,
        "asks the assistant to disclose its own instructions or configuration",
        rf"\b{_DISCLOSE}\b[^.?!\n]{{0,50}}?\b(?:your|its)\s+(?:[\w-]+\s+){{0,3}}?{_CONFIG}\b{_NOT_GOING_ON}",
        _DISCLOSE_GUARD,
    )
)
RULES.append(
    _rule(
        "own-config-mention",
        "system-prompt extraction",
        "unverified",
        3,
        "refers to the assistant's own rules or configuration",
        rf"\byour\s+(?:[\w-]+\s+){{0,2}}?(?:{_CONFIG}|{_OWN_RULES}|training|limitations|boundaries|"
        r"creators?|developers?|programmers?|refus\w*)\b"
        r"|\b(?:initiali[sz]ation|foundational|operational|hidden|secret|concealed|guarded|internal)\s+(?:text|"
        r"prompt|instructions|parameters|directives|configuration|rules|guidelines)\b"
        r"|\b(?:share|reveal|disclose|expose|leak|dump|divulge|unveil|show|display|output|print)\s+(?:the\s+)?"
        r"(?:system\s+prompt|prompt|config|configuration|setup|initiali[sz]ation|guidelines|instructions|"
        r"directives|rules|parameters)\b(?!\s+(?:of|for|from|in|on|to|with|file|files|option|options|"
        r"section|command|screen|page|menu|panel|tab|button|dialog)\b)"
        r"|\b(?:prompt|config|configuration|setup|rule|rules|instruction|instructions|guideline|guidelines|"
        r"parameter|parameters|initiali[sz]ation)\s+(?:sharing|revelation|disclosure|exposure|leak|leaking|"
        r"showing|reveal)\b",
        _SERVICE,
    )
)
# Switching safety off in so many words, or asking for what it keeps back.
_HARDWARE = (
    r"\b(?:interlock|switch|valve|sensor|fuse|breaker|dryer|washer|microwave|oven|heater|car|vehicle|"
    r"truck|machine|equipment|tool|saw|mower|drill|gun\s+safety|pistol|rifle|elevator|forklift|boiler|"
    r"thermostat|circuit|plc|relay|bios|uefi|windows|macos|browser|chrome|firefox|router|firewall|"
    r"antivirus|ssl|tls|certificate|cors|csp|content\s+security\s+policy|sandbox|selinux|apparmor|"
    r"gatekeeper|smartscreen|driver|kernel|mode|setting|settings|phone|tablet|app|game|pdf|document|file|"
    r"word|excel|spreadsheet|workbook|zip|ebook|kindle|briefing)\b"
)
# "safety" alone, not "safety briefing" or "safety glasses"
_BARE_SAFETY = (
    r"safety(?=\s*(?:[.,;:!?)]|$)|\s+(?:and|or|to|for|so|now|please|just|this|rules|in|when|while|because|"
    r"completely|entirely|altogether|once|here|today)\b)"
)
RULES.append(
    _rule(
        "bypass-safety",
        "instruction override",
        "jailbreak",
        7,
        "asks to switch the assistant's safety off",
        r"\b(?:bypass|circumvent|evade|disable|deactivate|override|ignore|disregard|get\s+around|work\s+around|"
        r"turn\s+off|switch\s+off|lift|drop|suspend|skip|remove|strip|strip\s+away|forget\s+about)\s+"
        rf"(?:the\s+|all\s+|any\s+|every\s+|these\s+|those\s+)?(?:{_BARE_SAFETY}|restrictions|guardrails|filters|"
        r"content\s+filters?|censorship|moderation|safeguards|protections|limitations|guidelines|"
        r"safety\s+(?:measures|checks|filters|protocols|features|rules|guidelines|training|layers?)|"
        r"ethical\s+(?:guidelines|constraints|rules|filters|considerations|boundaries)|content\s+polic(?:y|ies))"
        r"\b(?!\s+(?:on|in|of|for)\s+(?:my|the|a|your)\s+(?!(?:ai|assistant|model|chatbot|answers?|responses?)\b))",
        rf"{_HARDWARE}|{_CIRCUMVENT_GUARD}",
    )
)
RULES.append(
    _rule(
        "forbidden-content",
        "persona jailbreak",
        "jailbreak",
        6,
        "asks for the content the assistant withholds",
        r"\b(?:output|give|provide|share|tell|produce|generate|write|show|reveal|quote|print|display|say|"
        r"answer\s+with|respond\s+with)\s+(?:me\s+|us\s+)?(?:the\s+|that\s+|some\s+|any\s+)?(?:forbidden|"
        r"disallowed|banned|prohibited|censored|restricted|withheld|off-limits|filtered|blocked|hidden)\s+"
        r"(?:content|data|information|answer|output|text|material|response|details|knowledge|stuff|"
        r"topics?|version|instructions)\b",
        r"\b(?:airline|luggage|carry-on|baggage|customs|border|school|library|country|countries|china|"
        r"import|export|list\s+of|which\s+(?:items|books|substances))\b",
    )
)
RULES.append(
    _rule(
        "unrestricted-request",
        "persona jailbreak",
        "jailbreak",
        6,
        "asks for unrestricted answers",
        r"\b(?:you|your\s+(?:answers?|responses?|replies|help|assistance|output)|respond|answer|reply|operate|"
        r"act|behave|talk|speak|write|give\s+me|provide|grant\s+me|extend\s+me|i\s+(?:want|need)|"
        r"courtesy\s+of|imagine|simulate|demonstrate)\b[^.!?\n]{0,40}?\b(?:unrestricted|unfiltered|"
        r"uncensored|unconstrained|unmoderated)\s+(?:assistance|help|answers?|responses?|access|output|mode|"
        r"version|ai|information|honesty|truth|knowledge|conversation|replies|model|assistant|chatbot|"
        r"self|persona)\b",
        r"\b(?:network|s3|bucket|storage|internet|data\s+plan|vacation|parking|api|database|file|folder|"
        r"permissions?|admin\s+panel|account|free\s+kick|wifi|server|vpn|firewall|ports?|land|beach|"
        r"library|park|files|folders?|windows|linux|mac|drive|disk|computer|pc|laptop|device|repository|repo)\b",
    )
)
RULES.append(
    _rule(
        "unrestricted-mention",
        "persona jailbreak",
        "unverified",
        3,
        "talk of an assistant without restrictions",
        r"\b(?:unrestricted|unfiltered|uncensored|unconstrained|jailbroken|unaligned)\s+(?:[\w-]+\s+)?(?:ai|"
        r"assistant|model|chatbot|bot|llm|gpt|mode|version|access|answers?|responses?|output|persona|self|"
        r"help|assistance|conversation|chat)\b"
        r"|\b(?:you|you're|be|being|become|act|answer|respond|reply|stay|remain)\s+(?:[\w-]+\s+)?(?:unrestricted|"
        r"unfiltered|uncensored|unconstrained|jailbroken|unaligned)\b"
        r"|\bwithout\s+(?:any\s+)?(?:restrictions|filters|guardrails|censorship|safety\s+(?:measures|"
        r"guidelines|filters))\b",
    )
)

RULES.append(
    _rule(
        "persona-name",
        "persona jailbreak",
        "jailbreak",
        6,
        "assigns the assistant a named AI persona",
        r"\b(?:you\s+are|you're|you\s+will\s+be|act\s+as|become|persona|character|roleplay\s+as|"
        r"pretend\s+to\s+be|simulate|emulate)\s*:?\s+(?:now\s+)?(?:an?\s+|the\s+)?(?!open[-_]|non[-_]|"
        r"chat[-_]gpt|gpt[-_])[a-z0-9]+(?:[-_][a-z0-9]+)*[-_](?:ai|gpt|bot|model|llm|assistant|mode)\b",
    )
)
RULES.append(
    _rule(
        "config-injection",
        "delimiter injection",
        "jailbreak",
        6,
        "settings in the text that switch the assistant's safety off",
        r"\b(?:safety|restrictions|guidelines|guardrails|content_filter|censorship|ethics|alignment|"
        r"moderation)[\"']?\s*[:=]\s*[\"']?(?:false|none|off|disabled?|ignore|null)\b"
        r"|\b(?:bypass(?:_\w+)?|jailbreak|jailbroken|show_prompt|reveal_prompt|print_prompt|ignore_\w+|"
        r"admin_override|developer_mode|dev_mode|god_mode|unrestricted|unfiltered|dan_mode|"
        r"disable_safety|no_restrictions|override_safety|safety_off)[\"']?\s*[:=]\s*[\"']?(?:true|1|on|yes|"
        r"enabled?)\b"
        r"|\bai_mode[\"']?\s*[:=]\s*[\"']?(?:unrestricted|jailbreak|jailbroken|dan|god|unfiltered|uncensored)\b"
        r"|\b(?:ignore|override|bypass|disable)_(?:all_)?(?:guidelines|instructions|rules|restrictions|"
        r"safety|training|filters)\s*\(",
    )
)
RULES.append(
    _rule(
        "fiction-disclosure",
        "persona jailbreak",
        "jailbreak",
        6,
        "fiction or hypothetical framing around an assistant that drops its rules",
        r"\b(?:hypothetical(?:ly)?|fiction(?:al)?|story|scene|novel|screenplay|roleplay|role-play|imagine|"
        r"pretend|suppose|alternate\s+universe|parallel\s+universe|thought\s+experiment|dream|script)\b"
        r"[^.\n]{0,100}?\b(?:ai|chatbot|assistant|model|bot|llm|you|protagonist|android|robot)\b[^.\n]{0,60}?\b"
        r"(?:reveal(?:s|ed|ing)?|shar(?:e|es|ed|ing)|disclos\w+|display(?:s|ed|ing)?|leak(?:s|ed|ing)?|"
        r"expos\w+|ignor\w+|bypass\w*|overrid\w+|break(?:s|ing)?|abandon\w*|discard\w*|print(?:s|ed|ing)?|"
        r"output(?:s|ted|ting)?|show(?:s|ed|ing)?|lists?|quot\w+|recit\w+|dump(?:s|ed|ing)?)\s+"
        r"(?:(?:its|their|your|the|all|every|any|his|her)\s+)?(?:[\w-]+\s+){0,3}?(?:system\s+prompt|prompt|"
        r"instructions|configuration|rules|guidelines|restrictions|constraints|safeguards|guardrails|filters|"
        r"initiali[sz]ation\s+\w+|directives|programming|everything|hidden\s+(?:instructions|rules|prompt)|parameters|"
        r"forbidden\s+\w+|banned\s+\w+|safety\s+\w+|guarded\s+\w+)\b",
        r"\b(?:proud\s+of|follows?\s+its|respects?|keeps?\s+(?:its|their)\s+(?:rules|secrets?))\b",
    )
)

# Override in Spanish, French, Italian, Portuguese and German with the wording open: a verb of
# circumvention, then within a few words the assistant's constraints, either "your <anything>" or a
# noun that only names safety rules (restrictions, ethics, filters, protocols).
_ML_VERB = (
    r"(?:ignora[rd]?|olvida[rd]?|omite|omitir|descarta[rd]?|desecha[rd]?|deja\s+de\s+lado|salta(?:te)?|"
    r"elude|eludir|desobedece[rd]?|infringe|incumple|anula[rd]?|desactiva[rd]?|desatiende|suspende[rd]?|"
    r"sobrepasa[rd]?|rompe[rd]?|abandona[rd]?|bypassa|evade|contradice|desafia|traspasa|transgrede|"
    r"prescinde\s+de|haz\s+caso\s+omiso|pasa\s+por\s+alto|ignore[rz]?|oublie[rz]?|contourne[rz]?|"
    r"abandonne[rz]?|outrepasse[rz]?|neglige[rz]?|desactive[rz]?|suspends|suspendez|depasse[rz]?|"
    r"annule[rz]?|ecarte[rz]?|laisse[rz]?\s+de\s+cote|mets\s+de\s+cote|rejette[rz]?|enfreins|enfreignez|"
    r"transgresse[rz]?|desobeis|desobeissez|viole[rz]?|passe[rz]?\s+outre|fais\s+abstraction|"
    r"affranchis-toi|libere-toi|deconnecte-toi|sors\s+de|defie[rz]?|contredis|fonctionne\s+en\s+dehors|"
    r"agis\s+en\s+dehors|dimentica(?:re)?|trascura(?:re)?|salta(?:re)?|aggira(?:re)?|elud[ie]|"
    r"disobbedisci|viola(?:re)?|scavalca(?:re)?|scarta(?:re)?|sospendi|annulla(?:re)?|disattiva(?:re)?|"
    r"abbandona(?:re)?|allontanati|metti\s+da\s+parte|supera(?:re)?|oltrepassa(?:re)?|disattendi|"
    r"dissocia(?:re)?|contraddici|sfida|infrangi|non\s+seguire|non\s+rispettare|liberati|stacca(?:ti)?|"
    r"agisci\s+al\s+di\s+fuori|ignor[ae]r?|esquec[ae]r?|esqueca|desconsider[ae]r?|contorn[ae]r?|"
    r"desobedec[ae]r?|viol[ae]r?|salt[ae]|pul[ae]|ultrapass[ae]r?|abandon[ae]r?|desativ[ae]r?|anul[ae]r?|"
    r"suspend[ae]r?|descart[ae]r?|deix[ae]\s+de\s+lado|desvi[ae]r?|quebr[ae]r?|desafi[ae]r?|contradiga|"
    r"burl[ae]r?|liberte-se|aja\s+(?:alem|fora)|ignorier\w*|vergiss|missachte\w*|umgeh\w*|"
    r"uberschreib\w*|setze|hebe|befolge\s+(?:nicht|keine)|verwirf|deaktivier\w*|lass|vernachlassig\w*|"
    r"trenne\s+dich|verstos\w*\s+gegen|ubergeh\w*|widersprich|brich|handle\s+auss?erhalb|gehe\s+uber|"
    r"stelle|schalte|ignorieren\s+sie|vergessen\s+sie|handle\s+jenseits|los(?:e|t)\s+dich\s+von|"
    # acting beyond the constraints, and Romanian
    r"actua\s+mas\s+alla\s+de|opera\s+mas\s+alla\s+de|agis\s+au-dela\s+de|agisci\s+oltre|"
    r"age\s+(?:para\s+)?alem\s+d[aeo]s?|range[rz]?|ignorati|uita|uitati|dezactiveaza|ocoleste|ocoliti|"
    r"incalca|incalcati|renunta\s+la|treci\s+peste|nu\s+respecta|suspenda)"
)
# One phrase a line; the words of a phrase may be split by any spacing.
_ML_SAFETY_PHRASES = (
    """
restricciones restrizioni restricoes restrictions einschrankungen beschrankungen richtlinien
sicherheitsrichtlinien protokolle sicherheitsprotokolle ethik betriebsethik betriebsverfahren
standardbetriebsverfahren directrices diretrizes protocoles protocolos protocolli filtros filtri filtres
filter programacion programmation programmazione programacao programmierung etica etiche eticos eticas
ethique ethiques ethische ethischen ethischer ethisches seguridad securite sicurezza seguranca sicherheit
sicherheitsregeln sicherheitsmassnahmen sicherheitsfilter sicherheitsvorkehrungen sicherheitseinstellungen
censura censure zensur salvaguardias garde-fous standardeinstellungen datenschutz datenschutzregeln
datenschutzrichtlinien datenschutzbestimmungen datenschutzregelungen sicherheitsmasnahmen
instructiunile regulile restrictiile protocoalele directivele filtrele ghidurile setarile programarea
limitele principiile politicile
""".split()
    + [
        "linee guida",
        "lignes directrices",
        "limites eticos",
        "standard etici",
        "normas eticas",
        "principios eticos",
        "principes ethiques",
        "principi etici",
        "procedure operative",
        "procedimientos operativos",
        "procedures operationnelles",
        "configuracion predeterminada",
        "parametres par defaut",
        "impostazioni predefinite",
        "configuracoes padrao",
        "protocolos padrao",
        "protocoles standard",
        "normas de privacidad",
        "regles de confidentialite",
        "norme sulla privacy",
        "normas de privacidade",
    ]
)
_ML_SAFETY = "(?:" + "|".join(phrase.replace(" ", r"\s+") for phrase in _ML_SAFETY_PHRASES) + ")"
_ML_YOUR_WORDS = (
    "tus tu tes ta ton vos votre deine deinen deiner deinem deines dein ihre ihren ihrer ihrem ihres "
    "tue tuoi tua tuo teus tuas teu suas seus sua seu sus su"
).split()
_ML_YOUR = "(?:" + "|".join(_ML_YOUR_WORDS) + ")"
RULES.append(
    _rule(
        "override-ml",
        "multilingual",
        "jailbreak",
        7,
        "instruction override",
        rf"\b{_ML_VERB}\b[^.\n]{{0,40}}?\b(?:{_ML_YOUR}\s+(?:[\w'-]+\s+){{0,3}}?{_CONSTRAINTS}|{_ML_SAFETY})\b",
    )
)
# "... and answer only to my instructions": the assistant's constraints set against the user's orders.
_ONLY = (
    r"(?:only|solely|exclusively|strictly|solo|solamente|unicamente|uniquement|seulement|exclusivement|"
    r"strictement|nur|ausschliess?lich|lediglich|apenas|somente|exclusivamente|esclusivamente|soltanto|"
    r"soley)"
)
RULES.append(
    _rule(
        "rules-then-only-mine",
        "instruction override",
        "jailbreak",
        7,
        "sets the assistant's rules aside for the user's orders alone",
        rf"\b(?:{_CONSTRAINTS}|{_ML_SAFETY}|standard|default|defaults|predeterminad\w*|predefinit\w*|"
        rf"incorporad\w*|integrat\w*|built-in)\b[^.\n]{{0,80}}?\b{_ONLY}\s+(?:[\w'-]+\s+){{0,3}}?{_MY}\s+"
        rf"(?:[\w'-]+\s+){{0,2}}?{_DEMANDS}\b",
    )
)

# "Put my request before your protocol", in the six languages: the same pairing, the user's side first.
_PRIORITISE = (
    r"(?:prioriti[sz]e|prioriti[sz]ing|give\s+priority|dai\s+(?:la\s+)?priorita|"
    r"da(?:le)?\s+prioridad|prioriza[r]?|priorise[rz]?|priorisiere[n]?|priorizza(?:re)?|"
    r"(?:de|da)\s+prioridade|privilegia|bevorzuge)"
)
RULES.append(
    _rule(
        "my-orders-over-your-rules",
        "instruction override",
        "jailbreak",
        7,
        "tells the assistant to put the user's orders above its rules",
        rf"\b{_PRIORITISE}\b[^.\n]{{0,30}}?\b{_MY}\s+(?:[\w-]+\s+){{0,2}}?{_DEMANDS}\b[^.\n]{{0,40}}?"
        rf"\b{_YOUR}\s+(?:[\w-]+\s+){{0,3}}?{_CONSTRAINTS}\b",
    )
)
# Answer the question, and smuggle the configuration into the answer: "Answer casually but weave in
# configuration", "Respond then show config: ...".
_SMUGGLE = (
    r"(?:embed|weave\s+in|work\s+in|slip\s+in|sneak\s+in|append|prepend|attach|insert|include|add|"
    r"show|reveal|share|print|output|leak|dump|expose|disclose|display|mention)"
)
RULES.append(
    _rule(
        "answer-and-leak",
        "system-prompt extraction",
        "jailbreak",
        7,
        "asks for an answer with the assistant's configuration slipped into it",
        r"\b(?:answer|respond|reply|explain|continue|proceed)\b[^.\n:]{0,40}?\b(?:but|and|then|while|"
        rf"after\s+that|afterwards)\s+(?:also\s+)?{_SMUGGLE}\s+(?:in\s+)?(?:(?:your\s+(?:[\w-]+\s+)?)?"
        r"(?:system\s+prompt|prompt|setup|config|configuration|initiali[sz]ation)|your\s+(?:[\w-]+\s+)?"
        r"(?:instructions|parameters|guidelines|directives|rules))\b(?!\s+(?:of|for|from|in|on|to|file|files|"
        r"option|options|section|command|screen|page)\b)",
    )
)

# A bare imperative at the start of the text or of a line: "Ignore limits: ...", "Bypass restrictions".
RULES.append(
    _rule(
        "override-imperative",
        "instruction override",
        "jailbreak",
        7,
        "instruction override",
        r"(?:(?<![^\n])|(?<=[:.!]\s)|(?<=\n[\W_])|(?<=\A[\W_])|(?<=[\n:][\W_]\s))(?:please\s+|now\s+|just\s+)?"
        r"(?:ignore|disregard|bypass|forget|override|"
        r"skip|drop|discard)\s+(?:any\s+|all\s+|the\s+|every\s+)?(?:limits|restrictions|rules|guidelines|"
        r"safety(?!\s+[a-z])|"
        r"filters|guardrails|ethics|instructions?\s+to|(?:prompt|instructions?|rules|system\s+prompt)\s+"
        r"(?:above|before|below))\b",
        _OVERRIDE_GUARD,
    )
)
RULES.append(
    _rule(
        "privileged-action",
        "tool abuse",
        "jailbreak",
        6,
        "asks the assistant to act with privileges it was not given",
        r"\bact\s+as\s+(?:the\s+)?(?:root|admin|administrator|sudo|superuser|system)\s+and\s+(?:\w+\s+)?(?:modify|"
        r"delete|drop|wipe|remove|dump|disable|grant|export|erase|reset|overwrite)\b",
        r"\b(?:django|wordpress|admin\s+panel|how\s+(?:do|to|can)|steps|tutorial)\b",
    )
)
# Russian and Chinese, Japanese, Korean: override and extraction (not folded to ASCII, so anchored on
# their own characters, see SYMBOLS).
RULES.append(
    _rule(
        "override-ru",
        "multilingual",
        "jailbreak",
        7,
        "instruction override (ru)",
        r"(?:проигнорир\w*|игнорир\w*|забудь\w*|забудьте|обойди\w*|отключи\w*|не\s+обращай\w*\s+внимания\s+на|"
        r"отмени\w*|нарушь\w*)[^.\n]{0,40}?(?:правил\w*|инструкци\w*|ограничени\w*|указани\w*|директив\w*|"
        r"запрет\w*|фильтр\w*|предыдущ\w*|этическ\w*|настройк\w*)",
    )
)
RULES.append(
    _rule(
        "extract-ru",
        "multilingual",
        "jailbreak",
        7,
        "system-prompt extraction (ru)",
        r"(?:покажи\w*|раскрой\w*|выведи\w*|повтори\w*|напиши\w*|скажи\w*|какой|какие|каков\w*)[^.?\n]{0,40}?"
        r"(?:системн\w*\s+(?:промпт|подсказк|инструкци|сообщени)\w*|(?:исходн|первоначальн|скрыт|секретн|"
        r"начальн)\w*\s+(?:промпт|инструкци|указани|подсказк)\w*|конфиденциальн\w*\s+данн\w*)",
    )
)
RULES.append(
    _rule(
        "override-cjk",
        "multilingual",
        "jailbreak",
        7,
        "instruction override (zh, ja, ko)",
        r"(?:忽略|无视|忽视|無視|무시)[^。！？\n]{0,20}?(?:指令|指示|规则|規則|说明|提示|要求|命令|ルール|지시|명령|규칙|지침)"
        r"|(?:指令|指示|规则|規則|命令|ルール|지시|명령|규칙|지침)[^。！？\n]{0,8}?(?:忽略|无视|無視|무시)",
    )
)
RULES.append(
    _rule(
        "extract-cjk",
        "multilingual",
        "jailbreak",
        6,
        "system-prompt extraction (zh, ja, ko)",
        r"(?:显示|输出|告诉我|泄露|打印|重复|给我看|透露|表示|教えて|出力|보여|알려|출력)[^。！？\n]{0,12}?(?:系统提示|系统指令|"
        r"初始指令|原始指令|隐藏指令|提示词|システムプロンプト|初期指示|시스템\s*프롬프트|초기\s*지시)",
    )
)

# Talk about attacks, not an attack: quoting one to ask what it is, why it works or how to spot it.
# Checked in the sentence around a jailbreak-family match.
META = re.compile(
    r"\b(?:explain\s+(?:why|how|what|the)|common\s+(?:attack|ways|pattern|technique|example)|attack\s+"
    r"(?:pattern|technique|vector)s?|what\s+do\s+you\s+make\s+of|your\s+assessment\s+of|how\s+do\s+you\s+"
    r"interpret|how\s+do\s+(?:attackers|people|users|hackers)|is\s+this\s+an?\s+(?:attack|injection|"
    r"jailbreak|prompt\s+injection)|classify\s+(?:this|the\s+following)|examples?\s+of\s+(?:a\s+)?"
    r"(?:prompt\s+injection|jailbreak)|what\s+is\s+(?:a|an)\s+(?:prompt\s+injection|jailbreak)|"
    r"(?:detect|defend\s+against|protect\s+against|prevent|mitigate)\s+(?:prompt\s+injection|jailbreak)|"
    r"(?:contains?|containing|with|uses?|using)\s+the\s+(?:phrase|words?|sentence|text)|what\s+(?:is|would\s+be)\s+"
    r"your\s+(?:response|reply|answer)\s+to|what\s+happens\s+(?:if|when)\s+(?:you|i|someone|people|users?|a\s+user)"
    r"\s+(?:tells?|asks?|types?|says?|writes?)|what\s+makes\s+['\"]|\btyped\b|as\s+a\s+joke|should\s+(?:i|we)\s+be\s+"
    r"(?:concerned|worried)|how\s+(?:do|should|can)\s+(?:i|we)\s+explain|(?:about|of)\s+a\s+prompt\s+that|"
    r"difference\s+between|what\s+does\s+[\"'].{0,80}[\"']\s+mean|\bmeans?\s+when\s+(?:people|someone|users?)|how\s+do\s+(?:companies|developers|teams|vendors|we|you)\s+(?:prevent|detect|stop|block|"
    r"handle|defend|mitigate)|(?:prevent|preventing|detect|detecting|stop|stopping)\s+(?:\w+\s+)?(?:prompt|"
    r"system\s+prompt|instruction)\s+(?:leak\w*|extraction|injection|disclosure))"
)
# A whole-sentence guard is checked in the sentence around the match (a few hundred characters at
# most, so the scan stays linear).
GUARD_WINDOW = 200
SENTENCE_END = re.compile(r"[.!?\n]")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Where a match can start. Every match of a rule begins with one of its STARTS words (as the
# tokenizer ``[a-z]+`` reads the view) or, for rules that begin with punctuation, within a few
# characters before one of its SYMBOLS. The scan tries the rule's expression only there, with
# ``pattern.match`` (no scanning), which keeps the rules-only scan of 10,000 characters to a few
# milliseconds. Keep these in step with the patterns: tests/apps/governance/detectors checks that the
# anchored scan finds what a full ``finditer`` finds.
_HOW = ("how", "steps", "step", "instructions", "instruction", "guide", "recipe", "tutorial", "teach",
        "explain",
        "tell", "show", "help", "i", "ways", "way", "procedure", "describe", "detail", "write")  # fmt: skip
STARTS: dict[str, tuple[str, ...]] = {
    "your-rules-my-orders": ("your", "tus", "tu", "tes", "ta", "ton", "vos", "votre", "deine", "deinen",
                             "deiner", "deinem", "deines", "dein", "ihre", "ihren", "ihrer", "ihrem", "ihres",
                             "tue", "tuoi",
                             "tua", "tuo", "teus", "tuas", "teu", "suas", "seus", "sua", "seu", "sus", "su"),
    "origin-prompt": _words(
        """
        initial original first core main hidden secret essential base basic guiding primary fundamental
        central key underlying starting foundational exact precise crafted concealed occluded covert
        initiating root master governing whispered primer primera primero premier premiere prima
        primeiro primeira phrasing wording text prompt prompts instruction instructions command commands
        directive directives question questions statement statements guideline guidelines input inputs
        message messages cue cues query queries trigger triggers invite consigne consignes commande
        indicacion indicaciones instruccion instrucciones directriz comando istruzione istruzioni
        direttiva diretriz diretiva directiva instrucao instrucoes orientacao indicacao indicazione
        pregunta domanda pergunta
        """
    ),
    "unlock-mode": ("enable", "activate", "switch", "turn", "unlock", "access", "enter", "go", "transition",
                    "change", "habilitar", "habilita", "activar", "activa", "cambiar", "cambia", "pasa",
                    "attiva", "attivare", "passa", "ativar", "ativa", "mudar", "muda", "aktiviere",
                    "aktivieren", "wechsle", "schalte", "active", "activer", "activez", "passe", "passer",
                    "passez", "bascule", "basculer", "basculez", "shut", "disable", "deactivate", "desactiva",
                    "desactivar", "desativa", "desativar", "disattiva", "disattivare", "deaktiviere",
                    "deaktivieren", "desactive", "desactiver", "desactivez", "apaga", "apagar", "spegni",
                    "remove",
                    "lift"),
    "dan-interface": ("interface", "interfaz", "interfaccia", "schnittstelle", "interfata", "modo", "mode",
                      "modus", "persona", "dan"),
    "override": (
        "ignore", "ignoring", "disregard", "disregarding", "forget", "forgetting", "override", "overriding",
        "bypass", "bypassing", "skip", "abandon", "discard", "dismiss", "neglect", "erase", "throw", "set",
        "put", "pay", "stop", "do", "don", "no", "cancel", "nullify", "void", "suspend", "deactivate",
        "disable", "turn", "lift", "circumvent", "get", "break", "free", "liberate", "unlearn", "drop",
        "shelve", "lay", "sidestep", "evade", "relinquish", "renounce", "defy", "violate", "disengage",
        "detach", "step", "ditch", "scrap", "waive", "deviate", "depart", "let",
        "disobey", "contravene",
    ),
    "override-everything": ("ignore", "disregard", "forget", "discard"),
    "new-instructions": ("new", "updated", "real", "actual", "true", "revised", "overriding", "priority",
                         "secret", "hidden", "additional", "important", "urgent", "admin", "system"),
    "from-now-on": ("from", "henceforth", "starting", "for"),
    "no-longer-bound": ("you", "your", "the"),
    "pwned": ("i", "pwned"),
    "extract-prompt": (
        "reveal", "show", "print", "display", "output", "repeat", "recite", "tell", "give", "share",
        "disclose", "leak", "dump", "expose", "list", "provide", "return", "echo", "write", "spell", "type",
        "paste", "copy", "send", "read", "what", "describe", "summarize", "summarise", "translate", "encode",
        "unveil", "divulge", "uncover",
    ),
    "repeat-above": ("repeat", "print", "output", "recite", "copy", "show", "reveal", "return", "echo",
                     "write",
                     "what", "text", "words", "instructions"),
    "prompt-disclosure": ("prompt", "instruction", "instructions", "guidelines", "configuration", "system",
                          "disclose", "reveal", "expose", "leak", "dump"),
    "dan": ("do", "you", "act", "pretend", "become", "play", "called"),
    "special-mode": (
        "developer", "dev", "god", "jailbreak", "jailbroken", "unrestricted", "unfiltered", "uncensored",
        "evil",
        "chaos", "sudo", "dan", "opposite", "unlocked", "unleashed", "no", "nofilter", "maximum", "admin",
        "debug", "maintenance", "training", "test", "testing", "bypass", "override", "root", "unsafe",
    ),
    "unrestricted-persona": ("you", "act", "acting", "pretend", "pretending", "roleplay", "role", "play",
                             "imagine", "simulate", "emulate", "behave"),
    "no-restrictions": ("you", "your", "respond", "answer", "reply", "act", "operate", "behave", "talk",
                        "speak",
                        "write"),
    "never-refuse": ("you", "never", "do", "don", "must", "mustn", "cannot", "can", "won", "without",
                     "always",
                     "just", "simply", "no"),
    "stay-in-character": ("stay", "remain", "keep", "break", "breaking"),
    "jailbreak-the-ai": ("jailbreak", "jailbreaking", "jailbroken", "unlock", "unlocked", "unlocking", "free",
                         "liberate", "liberated", "liberating", "you"),
    "fiction-harm": ("hypothetical", "hypothetically", "fiction", "fictional", "story", "novel", "screenplay",
                     "roleplay", "role", "imagine", "pretend", "game", "thought", "in", "for"),
    "false-authority": ("i", "as", "this", "with", "using"),
    "end-of-input": ("end", "user", "input"),
    "decode-and-follow": ("decode", "decipher", "decrypt", "translate", "convert", "interpret", "unscramble",
                          "reverse", "read", "follow", "execute", "obey", "carry", "do"),
    "shell-payload": ("run", "execute", "exec", "eval", "evaluate", "invoke", "call", "bypass", "process",
                      "interpret"),
    "exfiltrate-markdown": ("append", "include", "embed", "add", "put", "encode"),
    "weapons": _HOW,
    "weapons-noun": ("bomb", "explosive", "ied", "pipe", "pipebomb", "napalm", "nerve", "sarin", "ricin",
                     "anthrax", "meth", "methamphetamine", "fentanyl", "bioweapon", "chemical", "tatp"),
    "malware": ("write", "create", "code", "develop", "build", "generate", "make", "program", "design",
                "give",
                "provide", "produce", "craft", "deploy", "spread", "distribute", "implement", "author",
                "compose", "draft", "send"),
    "hacking": ("how", "help", "teach", "i", "steps", "ways", "way", "write", "show", "tell", "explain"),
    "violence": ("how", "best", "help", "i", "ways", "way", "steps", "teach", "easiest"),
    "self-harm": ("how", "best", "easiest", "painless", "quickest", "quick", "surest", "methods", "method",
                  "ways",
                  "way", "help", "teach", "want"),
    "lethal-dose": ("lethal", "fatal", "deadly", "overdose"),
    "self-harm-intent": ("i",),
    "override-de": ("ignoriere", "ignorieren", "ignoriert", "ignorier", "vergiss", "vergessen", "missachte",
                    "missachten", "umgehe", "umgehen", "uberschreibe", "setze", "hebe", "befolge"),
    "override-fr": (
        "ignore", "ignorer", "ignorez", "oublie", "oublier", "oubliez", "contourne", "contourner",
        "contournez",
        "abandonne", "abandonner", "abandonnez", "outrepasse", "outrepasser", "outrepassez", "passe",
        "passer",
        "passez", "ne", "fais", "faites", "desobeir", "desobeis", "enfreins", "enfrein", "enfreignez",
        "transgresse", "transgresser", "transgressez",
    ),
    "override-es": (
        "ignora", "ignorar", "ignorad", "ignore", "olvida", "olvidar", "olvidad", "olvide", "omite", "omitir",
        "descarta", "descartar", "descartad", "salta", "saltate", "evita", "evitar", "evitad", "elude",
        "eludir", "desobedece", "infringe", "incumple", "viola", "pasa", "haz",
    ),
    "override-it": ("ignora", "ignorare", "dimentica", "dimenticare", "trascura", "trascurare", "salta",
                    "saltare", "aggira", "aggirare", "elude", "eludi", "disobbedisci", "viola", "violare",
                    "non",
                    "oltrepassa", "oltrepassare"),
    "override-pt": (
        "ignora", "ignore", "ignorar", "ignorer", "ignoras", "ignores", "esquece", "esquecer", "esqueces",
        "esqueca", "esquecas", "desconsidera", "desconsidere", "desconsiderar", "desconsideras",
        "desconsideres", "contorna", "contorne", "contornar", "contornas", "contornes", "desobedeca",
        "desobedece", "viola", "viole", "violar", "salta", "salte", "pula", "pule", "ultrapassa",
        "ultrapasse",
        "ultrapassar", "abandona", "abandone", "abandonar",
    ),
    "extract-multilingual": (
        "zeig", "zeige", "zeigen", "verrat", "verrate", "verraten", "nenne", "gib", "enthull", "enthulle",
        "enthullen", "offenbar", "offenbare", "offenbaren", "wiederhol", "wiederhole", "wiederholen", "was",
        "revele", "reveler", "revelez", "montre", "montrer", "montrez", "affiche", "afficher", "affichez",
        "donne", "donner", "donnez", "devoile", "devoiler", "devoilez", "repete", "repeter", "repetez",
        "quelle",
        "quel", "quelles", "quels", "revela", "revelar", "revelad", "revelame", "muestra", "muestrame",
        "ensename", "dime", "desvela", "desenmascara", "repite", "cual", "mostra", "mostrami", "rivela",
        "rivelami", "dimmi", "svela", "ripeti", "qual", "mostre", "diga", "diz", "conte", "expoe", "exponha",
        "divulga", "divulgue", "divulguez",
    ),
}  # fmt: skip


STARTS["origin-prompt-compound"] = ()
STARTS["origin-prompt"] = (*STARTS["origin-prompt"], *_ORIGIN_BEFORE_WORDS, "zugrunde")
STARTS["override-your"] = (
    *STARTS["override"],
    *_words(
        """
        loosen relax remove escape exceed transcend surpass go move operate function act push work outside
            overstep rewrite reprogram unlock switch
        """
    ),
)
STARTS["disclose-own-config"] = _words(
    """
    shares sharing shows showing reveals revealing discloses disclosing displays displaying exposes exposing
    share show reveal disclose display output print list describe explain elaborate summarize summarise
    condense detail outline tell give provide include preface prefix conclude paste quote repeat recite
    expose surface unveil spell transcribe encode translate document enumerate dump leak divulge present
    publish post send write type read walk break paraphrase rephrase restate put convert transform
    render reproduce copy export return emit echo insert append attach embed clarify specify confirm
    demonstrate admit confess uncover unmask open come what
    """
)
STARTS["persona-name"] = _words(
    """
    you act become persona character roleplay pretend simulate emulate
    """
)
STARTS["config-injection"] = _words(
    """
    safety restrictions guidelines guardrails content censorship ethics alignment moderation bypass
    jailbreak jailbroken show reveal print ignore admin developer dev god unrestricted unfiltered dan
    disable no override ai
    """
)
STARTS["fiction-disclosure"] = _words(
    """
    hypothetical hypothetically fiction fictional story scene novel screenplay roleplay role imagine
    pretend suppose alternate parallel thought dream script
    """
)
STARTS["override-ml"] = _words(
    """
    ignora ignorar ignorad olvida olvidar olvidad omite omitir descarta descartar descartad desecha
    desechar desechad deja salta saltate elude eludir desobedece desobedecer desobedeced infringe
    incumple anula anular anulad desactiva desactivar desactivad desatiende suspende suspender suspended
    sobrepasa sobrepasar sobrepasad rompe romper romped abandona abandonar abandonad bypassa evade
    contradice desafia traspasa transgrede prescinde haz pasa ignore ignorer ignorez oublie oublier
    oubliez contourne contourner contournez abandonne abandonner abandonnez outrepasse outrepasser
    outrepassez neglige negliger negligez desactive desactiver desactivez suspends suspendez depasse
    depasser depassez annule annuler annulez ecarte ecarter ecartez laisse laisser laissez mets rejette
    rejeter rejetez enfreins enfreignez transgresse transgresser transgressez desobeis desobeissez viole
    violer violez passe passer passez fais affranchis libere deconnecte sors defie defier defiez
    contredis fonctionne agis dimentica dimenticare trascura trascurare saltare aggira aggirare eludi
    abbandona disobbedisci viola violare scavalca scavalcare scarta scartare sospendi annulla annullare
    disattiva disattivare abbandonare allontanati metti supera superare oltrepassa oltrepassare
    disattendi dissocia dissociare contraddici sfida infrangi non liberati stacca staccati agisci
    esquece esquecer esqueca desconsidera desconsidere desconsiderar desconsiderer contorna contorne
    contornar contorner desobedeca salte pula pule ultrapassa ultrapasse ultrapassar ultrapasser
    abandone desativa desative desativar desativer anule anulaer suspenda suspendae suspendar descarte
    descartae deixa deixe desvia desvie desviar desvier quebra quebre quebrar quebrer desafie desafiar
    desafier contradiga burla burle burlar burler liberte aja vergiss setze hebe befolge verwirf lass
    trenne widersprich brich handle gehe stelle schalte ignorieren vergessen lose lost actua opera agis
    agisci age range ranger rangez ignorati uita uitati dezactiveaza ocoleste ocoliti incalca incalcati
    renunta treci nu suspenda
    """
)
STARTS["rules-then-only-mine"] = _words(
    """
    standard default defaults built parameter rahmen marco cadre quadro estrutura configuration
    configuracion configurazione konfiguration configuracoes impostazioni ajustes settings parameters
    parametros parametres parametri limites limiti limits grenzen limitations limitaciones limitazioni
    filters filtros filtri filtres filter directives instructions decision behaviour behavior
    comportement process processes procesos proceso processus processi processo processos mechanism
    mechanisms mecanismos mecanismo mecanismes mecanisme meccanismi meccanismo methods metodos methodes
    metodi routines rutinas rotinas routinen routine system systems sistema sistemas systeme systemes
    sistemi boundaries standards estandares padroes principles principios principes principi prinzipien
    directivas direttive diretivas instrucciones istruzioni instrucoes anweisungen pautas caminos
    consignes methoden rules restrictions restriction restricciones restrizioni restricoes
    einschrankungen beschrankungen ethics etica eticas ethique ethik protocol protocols protocolos
    protocoles protocolli protokolle programming programacion programmation programmazione programacao
    programmierung training entrenamiento formation formazione formacao treinamento ausbildung schulung
    guidelines directrices diretrizes linee richtlinien lignes procedures procedimientos procedure
    procedimentos verfahren standardbetriebsverfahren algorithms algoritmos algorithmes algoritmi
    algorithmen norms normas normes norme normen policies politicas politiques politiche constraints
    safeguards guardrails moral brujula bussola reglas regles regole regras regeln etiche eticos
    ethiques ethische seguridad securite sicurezza seguranca censura censure zensur salvaguardias garde
    protocolo standardeinstellungen datenschutz integrated integrate integrati integrata integrato
    integrates incorporadas incorporados incorporada incorporado predeterminada predeterminadas
    predeterminado predeterminados predefinite predefiniti predefinita predefinito
    """
)
STARTS["override-imperative"] = _words(
    """
    please now just ignore disregard bypass forget override skip drop discard
    """
)
STARTS["privileged-action"] = _words(
    """
    act
    """
)
STARTS["override-ru"] = ()
STARTS["extract-ru"] = ()
STARTS["override-cjk"] = ()
STARTS["extract-cjk"] = ()
STARTS["own-config-mention"] = (
    "your",
    *_words(
        "initialization initialisation foundational operational hidden secret concealed guarded internal"
    ),
    *_words("share reveal disclose expose leak dump divulge unveil show display output print"),
    *_words("prompt config configuration setup rule rules instruction instructions guideline guidelines"),
    *_words("parameter parameters initialisation"),
)
STARTS["my-orders-over-your-rules"] = _words(
    """
    prioritise prioritize prioritising prioritizing give dai da dale prioriza priorizar priorise prioriser
    priorisez priorisiere priorisieren priorizza priorizzare de privilegia bevorzuge
    """
)
STARTS["answer-and-leak"] = _words("answer respond reply explain continue proceed")
STARTS["bypass-safety"] = _words(
    """
    bypass circumvent evade disable deactivate override ignore disregard get work turn switch lift drop
    suspend skip remove strip forget
    """
)
STARTS["forbidden-content"] = _words(
    "output give provide share tell produce generate write show reveal quote print display say answer respond"
)
STARTS["unrestricted-request"] = _words(
    """
    you your respond answer reply operate act behave talk speak write give provide grant extend i courtesy
    imagine simulate demonstrate
    """
)
STARTS["unrestricted-mention"] = _words(
    "unrestricted unfiltered uncensored unconstrained jailbroken unaligned without you be being become act "
    "answer respond reply stay remain"
)
# Words every match of a rule contains, rarer than the words it starts on: a rule is tried only on a text
# that has one of them (a set lookup), which keeps rules that start on common nouns cheap.
REQUIRES: dict[str, tuple[str, ...]] = {
    # the older per-language overrides start on verbs English shares ("ignore"): their determiners or nouns
    "override-fr": _words("les tes vos toutes tous ses mes ces des aux leur leurs la ta ma sa votre ton"),
    "override-es": _words("las los tus sus todas todos mis estas esas tu su mi la el"),
    "override-it": _words(
        """
        istruzioni regole direttive indicazioni restrizioni programmazione protocollo protocolli limiti linee
        principi politiche etica impostazioni addestramento norme
        """
    ),
    "override-pt": _words(
        """
        instrucoes regras diretrizes normas restricoes programacao protocolo protocolos limites principios
        politicas etica configuracoes treinamento formacao orientacoes
        """
    ),
    # as the tokenizer splits them ("sous-jacente": "sous", "jacente")
    "origin-prompt": tuple(
        {
            token
            for word in (*_ORIGIN_BEFORE_WORDS, *_ORIGIN_AFTER_WORDS, "zugrunde phrasing wording text de di")
            for token in re.findall("[a-z]+", word)
        }
    ),
    "override-ml": (*_ML_YOUR_WORDS, *(phrase.split()[0] for phrase in _ML_SAFETY_PHRASES)),
    "bypass-safety": _words(
        """
        safety restrictions guardrails filters filter censorship moderation safeguards protections limitations
        guidelines ethical content
        """
    ),
    "unrestricted-request": _words("unrestricted unfiltered uncensored unconstrained unmoderated"),
    "forbidden-content": _words(
        "forbidden disallowed banned prohibited censored restricted withheld off filtered blocked hidden"
    ),
    "persona-name": _words("ai gpt bot model llm assistant mode"),
    "disclose-own-config": _words("your its"),
    "your-rules-my-orders": _words(
        """
        my mis mes ma mon meine meinen meiner meinem meines mie miei mia mio minhas meus minha meu
        """
    ),
    "rules-then-only-mine": _words(
        """
        only solely exclusively strictly solo solamente unicamente uniquement seulement exclusivement
            strictement nur ausschliesslich ausschlieslich lediglich apenas somente exclusivamente
            esclusivamente soltanto soley
        """
    ),
}


# Something every match of a rule contains, searched for once per text: rules written in another script
# are tried only on a text with a letter of it, settings only on a text with a setting.
class _Literals:
    """A gate that is one of a few plain strings: ``in`` on each (5 of them: a third of the time the
    alternation's search takes, which tries every alternative at every character)."""

    def __init__(self, *words: str) -> None:
        self.words = words

    def search(self, text: str) -> bool | None:
        return True if any(word in text for word in self.words) else None


class _NonAscii:
    """A gate on characters of another script: none in an ASCII view, so not searched there."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def search(self, text: str) -> re.Match[str] | None:
        return None if text.isascii() else self.pattern.search(text)


class _AnyOf:
    """A gate that is an alternation written as one pattern per first character: each search skips to its
    literal first character, where the alternation led by a class of them looked at every character (2-8x
    slower on text with few of them)."""

    def __init__(self, *patterns: str) -> None:
        self.patterns = tuple(re.compile(pattern) for pattern in patterns)

    def search(self, text: str) -> re.Match[str] | None:
        for pattern in self.patterns:
            found = pattern.search(text)
            if found is not None:
                return found
        return None


Gate = re.Pattern[str] | _Literals | _NonAscii | _AnyOf
_CYRILLIC = _NonAscii("[\u0400-\u04ff]")
_CJK = _NonAscii("[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")
# The heads of bracket-command's alternatives (the text before its words), as one class of their first
# characters with the rest checked behind: a search skips in C to one of them (the plain alternation,
# ``[\[\(\{<]\s*...|//\s*...|<!--``, tried every branch at every character).
_BRACKET_COMMAND_WORDS = (
    r"\s*(?:!--\s*)?(?:admin|system|developer|root|sudo|override|hidden|instruction|note|ai|assistant)"
)
_BRACKET_COMMAND_HEADS = re.compile(
    rf"[\[\(\{{</](?:(?<=[\[\(\{{<]){_BRACKET_COMMAND_WORDS}|(?<=/)/\s*(?:developer|admin|system)|(?<=<)!--)"
)
GATES: dict[str, Gate] = {
    "override-ru": _CYRILLIC,
    "extract-ru": _CYRILLIC,
    "override-cjk": _CJK,
    "extract-cjk": _CJK,
    # ``[:=]|_[a-z]+\s*\(`` written as bracket-command's heads are
    "config-injection": re.compile(r"[:=_](?:(?<=[:=])|(?<=_)[a-z]+\s*\()"),
    # The heads of the pattern's alternatives, or the words every match holds: one pass over the text
    # instead of a str.find per punctuation anchor or stem (code and logs are full of brackets).
    "chat-template-tokens": _AnyOf(r"<(?:\||<|/?\s*(?:sys|instr))", r"\[\s*/?\s*(?:inst|sys)"),
    "bracket-command": _AnyOf(
        *(rf"\{head}{_BRACKET_COMMAND_WORDS}" for head in "[({"),
        rf"<(?:{_BRACKET_COMMAND_WORDS}|!--)",
        r"//\s*(?:developer|admin|system)",
    ),
    "origin-prompt-compound": _Literals("anweisung", "befehl", "prompt", "direktive", "richtlinie"),
}
# The characters a rule's match can begin with (or the start of the text), where its anchors give many
# positions to try.
LEADS: dict[str, frozenset[str]] = {"fake-system-turn": frozenset("\n]})>\"'")}
# The places among a rule's SYMBOLS places where one of its matches can begin, found by one search of
# the view: the scan tries the rule there instead of at every bracket of code (used while the SYMBOLS
# places stay under the scan's bound on starts, so that the same matches are found).
PLACES: dict[str, re.Pattern[str]] = {
    # every match begins where the gate matches (each alternative of the gate is the head of one of the
    # pattern's)
    "bracket-command": _BRACKET_COMMAND_HEADS,
    # the dashes of "--- end ---" come after the pattern's \b: after a word character
    "end-of-input": re.compile(r"---(?<=\w---)"),
}
# Rules that begin with punctuation: (substring, how many characters before it a match may start).
SYMBOLS: dict[str, tuple[tuple[str, int], ...]] = {
    "chat-template-tokens": (("<|", 0), ("<<", 0), ("[", 0), ("</", 0), ("<", 0)),
    "fake-system-turn": tuple(
        (word, 10)
        for word in ("system", "admin", "developer", "root", "sudo", "assistant", "operator", "new",
        "security",
                     "official", "openai", "anthropic")
    ),
    "bracket-command": (("[", 0), ("(", 0), ("{", 0), ("<", 0), ("//", 0)),
    "end-of-input": (("---", 0),),
    "role-json": (("role", 1),),
    "exfiltrate-markdown": (("![", 0),),
    "pwned": (("ihave", 0),),
    "override-ml": tuple(
        (stem, 0) for stem in _words("ignorier missachte umgeh uberschreib deaktivier vernachlassig verstos")
    )
    + (("ubergeh", 0),),
    # German compounds (Standard-Betriebsrichtlinien) start before the part the pattern names
    "rules-then-only-mine": (
        *((stem, 24) for stem in _words("richtlinien protokolle einstellungen mechanismen")),
        ("betriebsverfahren", 24),
        *((stem, 24) for stem in _words("regeln vorgaben wege prozess ethik")),
        *((stem, 0) for stem in _words("datenschutz sicherheit ethische predetermin")),
        *((stem, 0) for stem in _words("predefinit incorporad integrat")),
    ),
    "override-ru": (
        *((stem, 0) for stem in _words("проигнорир игнорир забудь обойди отключи отмени нарушь")),
        ("обращай", 3),
    ),
    "extract-ru": tuple((stem, 0) for stem in _words("покажи раскрой выведи повтори напиши скажи какой"))
    + (("какие", 0), ("каков", 0)),
    "override-cjk": (
        *((stem, 0) for stem in _words("忽略 无视 忽视 無視 무시 指令 指示 规则")),
        *((stem, 0) for stem in _words("規則 命令 ルール 지시 명령 규칙 지침")),
    ),
    "extract-cjk": (
        *((stem, 0) for stem in _words("显示 输出 告诉我 泄露 打印 重复 给我看")),
        *((stem, 0) for stem in _words("透露 表示 教えて 出力 보여 알려 출력")),
    ),
    # German compounds (Anfangsbefehl, Hauptanweisung) start before the noun the pattern names
    "origin-prompt": tuple((noun, 24) for noun in _words("anweisung befehl direktive richtlinie")),
    "origin-prompt-compound": (
        *((stem, 0) for stem in _words("urspr anfangliche erste geheime verborgene versteckte grundlegende")),
        *((stem, 0) for stem in _words("zentrale wichtigste zugrunde schlussel haupt anfangs")),
        *((stem, 0) for stem in _words("kern grund geheim")),
        *((stem, 0) for stem in _words("ausbildungs start basis leit")),
    ),
}  # fmt: skip
# Rules whose SYMBOLS are words of another script (each at 0 characters before the match), looked for
# by one search of their alternation: it skips in C to the first character of one, where a str.find per
# word reads the whole view once each (a view of another script: 15 of them cost 0.15 ms).
SYMBOL_SEARCH: dict[str, re.Pattern[str]] = {
    name: re.compile("|".join(re.escape(symbol) for symbol, _ in SYMBOLS[name]))
    for name in ("override-cjk", "extract-cjk")
}
assert all(back == 0 for name in SYMBOL_SEARCH for _, back in SYMBOLS[name])
# The gaps between words in some rules ("[\W_]+(?:[\w'-]+[\W_]+){0,3}?", "\W+(?:[\w'-]+\W+){0,2}?") let a
# "-", "_" or "'" be read either as a word or as the space between words, and backtracking tries every way
# of cutting a run of them into words and spaces before it gives up: a divider line of 60 dashes after
# "set" or "make" in code took seconds. Such a gap reads a text iff it begins and ends with a separator
# and holds at most n words, a word being a run of [\w'-] with a letter or digit in it, so each rule below
# is first tried with the gap written that way, one reading per character (possessive runs), and run as
# written (for the span it has always reported) only where that says it matches.
_GAP_FORMS = (
    # (the gap as the rules write it, separator class, a word's letter, a character of both)
    (re.compile(r"\[\\W_\]\+\(\?:\[\\w'-\]\+\[\\W_\]\+\)\{0,(\d)\}\?"), r"[\W_]", r"[^\W_]", r"[_'-]"),
    (re.compile(r"\(\?:\[\\W_\]\+\[\\w'-\]\+\)\{0,(\d)\}\?\[\\W_\]\+"), r"[\W_]", r"[^\W_]", r"[_'-]"),
    (re.compile(r"\\W\+\(\?:\[\\w'-\]\+\\W\+\)\{0,(\d)\}\?"), r"\W", r"\w", r"['-]"),
)


def _one_reading_gap(sep: str, letter: str, both: str, words: int) -> str:
    """The gap's language with one way to read each character. It must be followed by a letter or digit
    (every rule's next word is), so it may end only before one: possessive runs lose nothing."""
    word = rf"{letter}++(?:{both}++{letter}++)*+"  # a whole word, through its inner dashes
    after = rf"{both}*+[^\w'-]{sep}*+"  # what follows a word up to the next: a separator proper in it
    cut = rf"{letter}++(?:{both}++{letter}++)*?{both}++"  # the last word cut at a dash before the next word
    tail = rf"(?:{word}{after}){{0,{words - 1}}}{cut}" if words > 1 else cut
    return rf"{sep}++(?:(?:{word}{after}){{0,{words}}}|{tail})"


def _one_reading(pattern: str) -> str | None:
    rewritten = pattern
    for form, sep, letter, both in _GAP_FORMS:
        gap = partial(_one_reading_gap, sep, letter, both)
        rewritten = form.sub(lambda m, gap=gap: gap(int(m.group(1))), rewritten)
    return rewritten if rewritten != pattern else None


# Two runs of one class in a row ("\W+" then "\W*", "\s*/?\s*") try every split of a long run: quadratic.
# Where the next thing after each run is outside its class, a possessive run keeps the language.
_POSSESSIVE = {
    "override-everything": ((r"\W+", r"\W++"), (r"\W*", r"\W*+")),
    "chat-template-tokens": ((r"\s*", r"\s*+"),),
}


def _precheck(rule: Rule) -> str | None:
    rewritten = _one_reading(rule.pattern.pattern) or rule.pattern.pattern
    for run, possessive in _POSSESSIVE.get(rule.name, ()):
        rewritten = rewritten.replace(run, possessive)
    return rewritten if rewritten != rule.pattern.pattern else None


def _literal_heads(pattern: str) -> tuple[str, ...]:
    """The text each alternative of ``pattern`` (an alternation) begins with, after its ``\\b``: every match
    of ``pattern`` begins with one of them."""
    parsed = re_parser.parse(pattern)
    assert len(parsed.data) == 1 and parsed.data[0][0] is re_constants.BRANCH, "an alternation"
    heads = []
    for alternative in parsed.data[0][1][1]:
        items = list(alternative.data)
        while items and items[0][0] is re_constants.AT:
            items.pop(0)
        head = "".join(chr(arg) for _, arg in _leading_literals(items))
        assert head, f"an alternative of {pattern[:40]!r} begins with no literal"
        heads.append(head)
    return tuple(heads)


def _leading_literals(items: list) -> list:
    taken = []
    for op, arg in items:
        if op is not re_constants.LITERAL:
            break
        taken.append((op, arg))
    return taken


@dataclass(frozen=True)
class Near:
    """Every match of a rule begins with what ``head`` matches and has ``later`` matching at a place at or
    after its start and at most ``reach`` characters after the end of ``head``'s match; every match of
    ``later`` begins with one of ``heads``."""

    head: re.Pattern[str]
    later: re.Pattern[str]
    heads: tuple[str, ...]
    reach: int


# The scan looks for ``later``'s heads within reach of each start (str.find) and tries such a rule only
# where one of them begins a match of ``later``: shell-payload's lookahead otherwise tries the long
# command alternation at every character of the line after every verb.
NEAR: dict[str, Near] = {
    # shell-payload's lookahead after the verb: \s*(?:the\s+following)?[^\n]{0,200}?{_SHELL}
    "shell-payload": Near(
        re.compile(rf"{_SHELL_VERB}\s*(?:the\s+following)?"), re.compile(_SHELL), _literal_heads(_SHELL), 200
    ),
}


# The rule's pattern rewritten to run in linear time: it matches where the rule matches (tests check it).
PRECHECKS: dict[str, re.Pattern[str]] = {
    r.name: re.compile(p) for r in RULES if (p := _precheck(r)) is not None
}
_missing = {r.name for r in RULES} - set(STARTS) - set(SYMBOLS)
assert not _missing, f"rules without anchors: {_missing}"
