"""The GeoReport v2 specification's own example documents, and shape comparisons against them.

Source: the Open311 GeoReport v2 specification, http://wiki.open311.org/GeoReport_v2
(sections "GET Service List", "GET Service Definition", "POST Service Request",
"GET Service Requests", "GET Service Request", "Errors") and
http://wiki.open311.org/Service_Discovery ("Examples"). The documents below are pasted
as the spec prints them. Its JSON writes codes with leading zeros unquoted
(``"service_code":001``), which JSON does not allow: ``spec_json`` quotes those before
parsing and changes nothing else.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote_plus
from xml.etree import ElementTree

# --------------------------------------------------------------- GET Service List
SERVICES_XML = """<?xml version="1.0" encoding="utf-8"?>
<services>
    <service>
        <service_code>001</service_code>
        <service_name>Cans left out 24x7</service_name>
        <description>Garbage or recycling cans that have been left out for more than 24 hours after collection. Violators will be cited.</description>
        <metadata>true</metadata>
        <type>realtime</type>
        <keywords>lorem, ipsum, dolor</keywords>
        <group>sanitation</group>
    </service>
    <service>
        <service_code>002</service_code>
        <metadata>true</metadata>
        <type>realtime</type>
        <keywords>lorem, ipsum, dolor</keywords>
        <group>street</group>
        <service_name>Construction plate shifted</service_name>
        <description>Metal construction plate covering the street or sidewalk has been moved.</description>
    </service>
    <service>
        <service_code>003</service_code>
        <metadata>true</metadata>
        <type>realtime</type>
        <keywords>lorem, ipsum, dolor</keywords>
        <group>street</group>
        <service_name>Curb or curb ramp defect</service_name>
        <description>Sidewalk curb or ramp has problems such as cracking, missing pieces, holes, and/or chipped curb.</description>
    </service>
</services>"""  # noqa: E501

SERVICES_JSON = """[
  {
    "service_code":001,
    "service_name":"Cans left out 24x7",
    "description":"Garbage or recycling cans that have been left out for more than 24 hours after collection. Violators will be cited.",
    "metadata":true,
    "type":"realtime",
    "keywords":"lorem, ipsum, dolor",
    "group":"sanitation"
  },
  {
    "service_code":002,
    "metadata":true,
    "type":"realtime",
    "keywords":"lorem, ipsum, dolor",
    "group":"street",
    "service_name":"Construction plate shifted",
    "description":"Metal construction plate covering the street or sidewalk has been moved."
  },
  {
    "service_code":003,
    "metadata":true,
    "type":"realtime",
    "keywords":"lorem, ipsum, dolor",
    "group":"street",
    "service_name":"Curb or curb ramp defect",
    "description":"Sidewalk curb or ramp has problems such as cracking, missing pieces, holes, and/or chipped curb."
  }
]"""  # noqa: E501

# --------------------------------------------------------- GET Service Definition
DEFINITION_XML = """<?xml version="1.0" encoding="utf-8"?>
<service_definition>
    <service_code>DMV66</service_code>
    <attributes>
        <attribute>
            <variable>true</variable>
            <code>WHISHETN</code>
            <datatype>singlevaluelist</datatype>
            <required>true</required>
            <datatype_description></datatype_description>
            <order>1</order>
            <description>What is the ticket/tag/DL number?</description>
            <values>
                <value>
                    <key>123</key>
                    <name>Ford</name>
                </value>
                <value>
                    <key>124</key>
                    <name>Chrysler</name>
                </value>
            </values>
        </attribute>
    </attributes>
</service_definition>"""

DEFINITION_JSON = """{
  "service_code":"DMV66",
  "attributes":[
    {
      "variable":true,
      "code":"WHISHETN",
      "datatype":"singlevaluelist",
      "required":true,
      "datatype_description":null,
      "order":1,
      "description":"What is the ticket/tag/DL number?",
      "values":[
        {
          "key":123,
          "name":"Ford"
        },
        {
          "key":124,
          "name":"Chrysler"
        }
      ]
    }
  ]
}"""

# ----------------------------------------------------------- POST Service Request
# The example request body, exactly as the spec shows it (values are San Francisco's).
POST_EXAMPLE_BODY = (
    "api_key=xyz&jurisdiction_id=city.gov&service_code=001&lat=37.76524078&long=-122.4212043"
    "&address_string=1234+5th+street&email=smit333%40sfgov.edu&device_id=tt222111"
    "&account_id=123456&first_name=john&last_name=smith&phone=111111111"
    "&description=A+large+sinkhole+is+destroying+the+street"
    "&media_url=http%3A%2F%2Ffarm3.static.flickr.com%2F2002%2F2212426634_5ed477a060.jpg"
    "&attribute[WHISPAWN]=123456&attribute[WHISDORN]=COISL001"
)
POST_EXAMPLE_FIELDS = [pair.split("=", 1)[0] for pair in POST_EXAMPLE_BODY.split("&")]

CREATED_XML = """<?xml version="1.0" encoding="utf-8"?>
<service_requests>
    <request>
        <service_request_id>293944</service_request_id>
        <service_notice>
            The City will inspect and require the responsible party to correct within 24 hours and/or issue a Correction Notice or Notice of Violation of the Public Works Code
        </service_notice>
        <account_id/>
    </request>
</service_requests>"""  # noqa: E501

CREATED_JSON = """[
  {
    "service_request_id":293944,
    "service_notice":"The City will inspect and require the responsible party to correct within 24 hours and/or issue a Correction Notice or Notice of Violation of the Public Works Code",
    "account_id":null
  }
]"""  # noqa: E501

# ------------------------------------------------ GET Service Requests / GET Service Request
# The spec's GET Service Request example is the first request of this document.
REQUESTS_XML = """<?xml version="1.0" encoding="utf-8"?>
<service_requests>
    <request>
        <service_request_id>638344</service_request_id>
        <status>closed</status>
        <status_notes>Duplicate request.</status_notes>
        <service_name>Sidewalk and Curb Issues</service_name>
        <service_code>006</service_code>
        <description></description>
        <agency_responsible></agency_responsible>
        <service_notice></service_notice>
        <requested_datetime>2010-04-14T06:37:38-08:00</requested_datetime>
        <updated_datetime>2010-04-14T06:37:38-08:00</updated_datetime>
        <expected_datetime>2010-04-15T06:37:38-08:00</expected_datetime>
        <address>8TH AVE and JUDAH ST</address>
        <address_id>545483</address_id>
        <zipcode>94122</zipcode>
        <lat>37.762221815</lat>
        <long>-122.4651145</long>
        <media_url>http://city.gov.s3.amazonaws.com/requests/media/638344.jpg </media_url>
    </request>
    <request>
        <service_request_id>638349</service_request_id>
        <status>open</status>
        <status_notes></status_notes>
        <service_name>Sidewalk and Curb Issues</service_name>
        <service_code>006</service_code>
        <description></description>
        <agency_responsible></agency_responsible>
        <service_notice></service_notice>
        <requested_datetime>2010-04-19T06:37:38-08:00</requested_datetime>
        <updated_datetime>2010-04-19T06:37:38-08:00</updated_datetime>
        <expected_datetime>2010-04-19T06:37:38-08:00</expected_datetime>
        <address>8TH AVE and JUDAH ST</address>
        <address_id>545483</address_id>
        <zipcode>94122</zipcode>
        <lat>37.762221815</lat>
        <long>-122.4651145</long>
        <media_url>http://city.gov.s3.amazonaws.com/requests/media/638349.jpg </media_url>
    </request>
</service_requests>"""

REQUESTS_JSON = """[
  {
    "service_request_id":638344,
    "status":"closed",
    "status_notes":"Duplicate request.",
    "service_name":"Sidewalk and Curb Issues",
    "service_code":006,
    "description":null,
    "agency_responsible":null,
    "service_notice":null,
    "requested_datetime":"2010-04-14T06:37:38-08:00",
    "updated_datetime":"2010-04-14T06:37:38-08:00",
    "expected_datetime":"2010-04-15T06:37:38-08:00",
    "address":"8TH AVE and JUDAH ST",
    "address_id":545483,
    "zipcode":94122,
    "lat":37.762221815,
    "long":-122.4651145,
    "media_url":"http://city.gov.s3.amazonaws.com/requests/media/638344.jpg "
  },
  {
    "service_request_id":638349,
    "status":"open",
    "status_notes":null,
    "service_name":"Sidewalk and Curb Issues",
    "service_code":006,
    "description":null,
    "agency_responsible":null,
    "service_notice":null,
    "requested_datetime":"2010-04-19T06:37:38-08:00",
    "updated_datetime":"2010-04-19T06:37:38-08:00",
    "expected_datetime":"2010-04-19T06:37:38-08:00",
    "address":"8TH AVE and JUDAH ST",
    "address_id":545483,
    "zipcode":94122,
    "lat":37.762221815,
    "long":-122.4651145,
    "media_url":"http://city.gov.s3.amazonaws.com/requests/media/638349.jpg"
  }
]"""

# ------------------------------------------------------------------------ Errors
ERRORS_XML = """<?xml version="1.0" encoding="utf-8"?>
<errors>
    <error>
        <code>403</code>
        <description>Invalid api_key received -- can't proceed with create_request.</description>
    </error>
</errors>"""

ERRORS_JSON = """[
  {
    "code":403,
    "description":"Invalid api_key received -- can't proceed with create_request."
  }
]"""

# ------------------------------------------------------------- Service Discovery
DISCOVERY_XML = """<?xml version="1.0" encoding="UTF-8"?>
<discovery>
    <changeset>2011-02-03 14:18</changeset>
    <contact>You can email or call for assistance api@mycity.org +1 (555) 555-5555</contact>
    <key_service>You can request a key here: http://api.mycity.gov/api_key/request</key_service>
    <endpoints>
        <endpoint>
            <specification>http://wiki.open311.org/GeoReport_v2</specification>
            <url>http://open311.mycity.gov/v2</url>
            <changeset>2010-11-23 09:01</changeset>
            <type>production</type>
            <formats>
                <format>text/xml</format>
            </formats>
        </endpoint>
        <endpoint>
            <specification>http://wiki.open311.org/GeoReport_v2</specification>
            <url>http://open311.mycity.gov/test/v2</url>
            <changeset>2010-10-02 09:01</changeset>
            <type>test</type>
            <formats>
                <format>text/xml</format>
                <format>application/json</format>
            </formats>
        </endpoint>
    </endpoints>
</discovery>"""

DISCOVERY_JSON = """{
  "changeset":"2011-02-03 14:18",
  "contact":"You can email or call for assistance api@mycity.org +1 (555) 555-5555",
  "key_service":"You can request a key here: http://api.mycity.gov/api_key/request",
  "endpoints":[
    {
      "specification":"http://wiki.open311.org/GeoReport_v2",
      "url":"http://open311.mycity.gov/v2",
      "changeset":"2010-11-23 09:01",
      "type":"production",
      "formats":[
        "text/xml"
      ]
    },
    {
      "specification":"http://wiki.open311.org/GeoReport_v2",
      "url":"http://open311.mycity.gov/test/v2",
      "changeset":"2010-10-02 09:01",
      "type":"test",
      "formats":[
        "text/xml",
        "application/json"
      ]
    }
  ]
}"""

_LEADING_ZERO = re.compile(r'(":)(0\d+)([,\s}])')


def spec_json(text: str) -> Any:
    """Parse one of the spec's JSON examples (quoting its zero-padded codes first)."""
    return json.loads(_LEADING_ZERO.sub(r'\1"\2"\3', text))


def spec_xml(text: str) -> ElementTree.Element:
    return ElementTree.fromstring(text.encode("utf-8"))


# ------------------------------------------------------------------ comparisons

_SCALARS = (str, int, float, type(None))


def assert_json_like(ours: Any, example: Any, where: str = "$") -> None:
    """Our document has the example's shape: the same field names at every level, lists where
    it has lists, objects where it has objects, booleans where it has booleans; other
    scalars may be any scalar or null (the spec's examples use null for "not returned").
    """
    if isinstance(example, list):
        assert isinstance(ours, list), f"{where}: expected a list, got {ours!r}"
        assert example, where
        for i, item in enumerate(ours):
            assert_json_like(item, example[0], f"{where}[{i}]")
    elif isinstance(example, dict):
        assert isinstance(ours, dict), f"{where}: expected an object, got {ours!r}"
        missing, extra = set(example) - set(ours), set(ours) - set(example)
        assert not missing and not extra, f"{where}: missing {missing}, extra {extra}"
        for key, value in example.items():
            assert_json_like(ours[key], value, f"{where}.{key}")
    elif isinstance(example, bool):
        assert isinstance(ours, bool), f"{where}: expected a boolean, got {ours!r}"
    else:
        assert isinstance(ours, _SCALARS) and not isinstance(ours, bool), (
            f"{where}: expected a scalar, got {ours!r}"
        )


def assert_xml_like(
    ours: ElementTree.Element, example: ElementTree.Element, where: str = ""
) -> None:
    """The same element names at every level: root, repeated items, each item's fields;
    a leaf in the example is a leaf (text or empty) in ours.
    """
    path = f"{where}/{example.tag}"
    assert ours.tag == example.tag, f"{path}: got <{ours.tag}>"
    example_children = list(example)
    if not example_children:
        assert not list(ours), f"{path}: expected text, got children {[c.tag for c in ours]}"
        return
    item_tags = {c.tag for c in example_children}
    repeated = len(example_children) > 1 and len(item_tags) == 1
    if repeated or (len(example_children) == 1 and example.tag.endswith("s")):
        (tag,) = item_tags
        for child in ours:
            assert child.tag == tag, f"{path}: item <{child.tag}>, expected <{tag}>"
            assert_xml_like(child, example_children[0], path)
        return
    ours_tags = [c.tag for c in ours]
    assert sorted(ours_tags) == sorted(c.tag for c in example_children), (
        f"{path}: fields {sorted(ours_tags)} != {sorted(c.tag for c in example_children)}"
    )
    by_tag = {c.tag: c for c in ours}
    for child in example_children:
        assert_xml_like(by_tag[child.tag], child, path)


def form_body(fields: list[tuple[str, str]]) -> str:
    """``application/x-www-form-urlencoded`` as the spec's example writes it: ``+`` for
    spaces, percent-escapes, and ``attribute[CODE]`` keys left with their brackets.
    """
    return "&".join(f"{name}={quote_plus(value)}" for name, value in fields)


SPEC_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
CITIZEN = {"first_name": "秀英", "last_name": "张", "phone": "13812345678"}
EMAIL = "zhang.xiuying@example.cn"


def spec_like_fields(api_key: str, /, **overrides: str | None) -> list[tuple[str, str]]:
    """The spec example's fields, in its order, with values for a Haidian power outage
    (``None`` drops a field). Its two attributes become this service's two.
    """
    fields: dict[str, str | None] = {
        "api_key": api_key,
        "jurisdiction_id": "haidian.12345",
        "service_code": "PU02",
        "lat": "39.9931",
        "long": "116.3489",
        "address_string": "学院路石油大院社区 3号楼",
        "email": EMAIL,
        "device_id": "tt222111",
        "account_id": "acct-778899",
        "first_name": CITIZEN["first_name"],
        "last_name": CITIZEN["last_name"],
        "phone": CITIZEN["phone"],
        "description": "整栋楼停电两个小时了，电梯也停了",
        "media_url": "http://img.example.cn/outage/2212426634.jpg",
        "attribute[since]": "2026-11-23T15:00:00+08:00",
        "attribute[households]": "120",
    }
    fields.update(overrides)
    return [(name, value) for name, value in fields.items() if value is not None]


def personal_values() -> list[str]:
    """What must never appear in a response body."""
    return [
        CITIZEN["phone"],
        "138****5678",
        "张秀英",
        "秀英",
        EMAIL,
        "tt222111",
        "acct-778899",
    ]
