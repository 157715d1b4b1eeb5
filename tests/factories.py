"""Valid sample records for every record group (used by schema tests and, later, node tests)."""

from __future__ import annotations

from common.identity import check_character


def resident_id(region: str = "440106", birth: str = "19880315", seq: str = "123") -> str:
    """A resident ID number with a correct MOD 11-2 check character."""
    first17 = region + birth + seq
    return first17 + check_character(first17)


GOOD_RECORDS: dict[str, dict] = {
    "JBXX": {
        "XM": "李明",
        "XBM": "1",
        "GJDQM": "156",
        "SFZJLXM": "1",
        "SFZJH": resident_id(),
        "CSRQ": "1988-03-15",
        "MZM": "01",
        "ZZMMM": ["01"],
        "HYZKM": "20",
        "JKZKM": "1",
        "ZGXLM": "14",
        "ZGXWCCM": "3",
        "ZGXWM": "342",
        "CJGZNY": "2012-09",
        "JBXNY": "2015-09",
        "JZGLYM": "11",
        "JZGLBM": "11",
        "SFZB": "1",
        "QDHTQKM": "1",
        "XRGWLBM": "1",
        "XRGWDJM": "110",
        "XRZYJSZWM": "012",
        "SFQRZSFLZYBY": "1",
        "SFSGTJZYPYPX": "0",
        "SFYTSJYCYZS": "0",
        "XXJSYYNLM": "2",
        "SFSMFSFS": "0",
        "SFCJJCFWXM": "1",
        "JCFWXMKSNY": "2010-07",
        "JCFWXMJSNY": "2012-07",
        "SFTJJS": "0",
        "SFXJGGJS": "1",
        "SFXLJKJYJS": "0",
        "RYZTM": "100",
        "JG": "440106",
        "CSD": "440106",
    },
    "XXJL": {
        "HDXLM": "14",
        "HDXLGJDQM": "156",
        "HDXLYX": "华南师范大学",
        "SXZY": "学科教学(数学)",
        "SFSFLZY": "1",
        "RXNY": "2010-09",
        "BYNY": "2012-06",
        "XWCCM": "3",
        "XWMCM": "342",
        "XXFSM": "1",
    },
    "GZJL": {"RZDWMC": "广州市第一中学", "RZKSNY": "2012-09", "RZJSNY": "2015-08", "DWXZLBM": "2", "RZGW": "数学教师"},
    "GWPR": {"GWLBM": "1", "GWDJM": "110", "PRKSNY": "2016-01", "SFJRQTGW": "0", "XJZWM": ["00"]},
    "ZYJSZWPR": {"PRZYJSZWM": "012", "PRKSNY": "2018-01", "PRDWMC": "广州市第二中学"},
    "JBDY": {"ND": 2024, "NGZSR": "156000.00", "JBGZ": "4800", "JXGZ": "3500.50", "WXYJM": ["1", "2", "6"]},
    "NDKH": {"KHND": 2024, "KHJGM": "1", "KHDWMC": "广州市第二中学"},
    "JSZG": {
        "JSZGZZLM": "4",
        "JSZGZHM": "20124400000001",
        "RJXK": "数学",
        "ZSBFRQ": "2012-07-01",
        "BFJG": "广州市教育局",
    },
    "SDXX": {"SDKHSJ": "2024-12", "SDKHJLM": "1", "CFLBM": "0"},
    "JYJX": {"XN": 2024, "XQM": "1", "RJXDM": "4", "RKZKM": "1", "RJKCM": ["14"], "PJMZKS": 12},
    "JXKYCG": {"CGLXM": "3", "CGMC": "函数概念教学的实践研究", "CGRQ": "2023-05", "BRJSM": "1", "BRPM": 1},
    "RXRCXM": {"RXRCXMM": "05", "RXNF": 2022},
    "GNPX": {"PXND": 2024, "PXLBM": "2", "PXXMMC": "省级骨干教师培训", "PXFSM": "1", "PXHDXS": 72, "PXHDXF": 9},
    "HWYX": {
        "SFYHWYXJL": "1",
        "KSRQ": "2019-02-01",
        "JSRQ": "2019-07-31",
        "GJDQM": "826",
        "YXJGMC": "University of Cambridge",
        "XMMC": "访问学者项目",
    },
    "JNZS": {"YZM": "01", "ZWCDM": "2", "ZSLXM": "2", "YYZSMCM": "03", "FZNY": "2009-06"},
    "JLLG": {
        "JLLGLXM": "1",
        "SFDDRSGX": "0",
        "KSNY": "2023-09",
        "JSNY": "2024-07",
        "YDWMC": "广州市第二中学",
        "JLLGDWMC": "从化区太平中学",
    },
    "LXFS": {
        "TXDZ": "广州市天河区中山大道西55号",
        "LXDH": "020-85211234",
        "SJ": "13800138000",
        "DZXX": "liming@example.cn",
    },
}

# One invalid variant per group: (changes, the field that must be named)
BAD_RECORDS: dict[str, tuple[dict, str]] = {
    "JBXX": ({"XBM": "7"}, "XBM"),
    "XXJL": ({"BYNY": "2009-06"}, "BYNY"),
    "GZJL": ({"RZJSNY": "2011-01"}, "RZJSNY"),
    "GWPR": ({"GWDJM": "205"}, "GWDJM"),
    "ZYJSZWPR": ({"PRZYJSZWM": "999"}, "PRZYJSZWM"),
    "JBDY": ({"JXGZ": "12.345"}, "JXGZ"),
    "NDKH": ({"KHJGM": None}, "KHJGM"),
    "JSZG": ({"ZSBFRQ": "2012-02-30"}, "ZSBFRQ"),
    "SDXX": ({"CFYY": "迟到"}, "CFYY"),
    "JYJX": ({"PJMZKS": -3}, "PJMZKS"),
    "JXKYCG": ({"CGMC": ""}, "CGMC"),
    "RXRCXM": ({"RXNF": "22"}, "RXNF"),
    "GNPX": ({"PXHDXS": 7.5}, "PXHDXS"),
    "HWYX": ({"GJDQM": "156"}, "GJDQM"),
    "JNZS": ({"ZWCDM": None}, "ZWCDM"),
    "JLLG": ({"JLLGDWMC": "广州市第二中学"}, "JLLGDWMC"),
    "LXFS": ({"SJ": "1380013800"}, "SJ"),
}
