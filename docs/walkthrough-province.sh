#!/usr/bin/env bash
# Walk-through: from `tmis province init` to an effective teacher file, using only the documented CLI and
# JSON API (docs/provincial-node.md). Run from the repository with tmis installed (scripts/demo installs
# it), e.g.:   bash docs/walkthrough-province.sh
# It uses a throw-away data directory and a free loopback port, and stops the server it starts.
set -euo pipefail
WORK="${WORK:-$(mktemp -d)}"
PORT="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
export TMIS_DATA_DIR="$WORK/province-11" TMIS_PROVINCE_CODE=11 TMIS_BIND="127.0.0.1:$PORT"
API="http://127.0.0.1:$PORT/api/v1"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {'d': d}))" "$1"; }
post() { curl -sS --fail-with-body -X POST "$API$1" -H "Authorization: Bearer ${TOKEN:-}" -H 'Content-Type: application/json' -d "$2"; }
put()  { curl -sS --fail-with-body -X PUT  "$API$1" -H "Authorization: Bearer ${TOKEN:-}" -H 'Content-Type: application/json' -d "$2"; }
get()  { curl -sS --fail-with-body "$API$1" -H "Authorization: Bearer ${TOKEN:-}"; }
# a resident ID number (GB 11643) with its MOD 11-2 check character, for the real-name account data
rid() { python3 -c "import sys; b=sys.argv[1]; print(b + '10X98765432'[sum(int(c)*(2**(17-i)%11) for i,c in enumerate(b))%11])" "$1"; }
# create an account: username, real name, unit id, role, ID number base (17 digits)
account() {
  post /accounts "{\"username\": \"$1\", \"real_name\": \"$2\", \"unit_id\": $3, \"role\": \"$4\", \"password\": \"Initial-pass-1\",
   \"id_number\": \"$(rid "$5")\", \"phone\": \"13800138000\"}" > /dev/null
}
# log in; at first login change the initial password, then log in again
login() {
  TOKEN=$(curl -sS --fail-with-body -X POST "$API/auth/login" -H 'Content-Type: application/json' \
          -d "{\"username\": \"$1\", \"password\": \"$2\"}" | json 'd["token"]')
  post /auth/password "{\"old_password\": \"$2\", \"new_password\": \"$3\"}" > /dev/null
  TOKEN=$(curl -sS --fail-with-body -X POST "$API/auth/login" -H 'Content-Type: application/json' \
          -d "{\"username\": \"$1\", \"password\": \"$3\"}" | json 'd["token"]')
}

echo "1. initialise the node: database, province unit, first system administrator, signing key, data key"
# --second-factor-roles '': this walk-through drives the API with passwords only. A real node keeps the default
# (system and information administrators sign in with a security key, and get API tokens from the page 安全密钥).
tmis province init --province-code 11 --admin-username bj_admin --admin-name 北京管理员 --admin-password 'Initial-pass-1' \
  --second-factor-roles ''

echo "2. serve it (waitress) on $TMIS_BIND"
tmis province serve > "$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break; sleep 0.2; done

echo "3. the province administrator imports the unit tree (Beijing: no city level)"
login bj_admin 'Initial-pass-1' 'Province-pass-2'
curl -sS --fail-with-body -X POST "$API/units/import" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' \
  --data-binary $'code,name,level,parent_code,division_code,school_type,urban_rural_type,sponsor_type,supervisor_code\n110105,朝阳区教委,county,110000,,,,,\n2111000001,朝阳区实验小学,school,110105,,211,111,,110105\n'
echo
COUNTY=$(get /units | json '[u["id"] for u in d["units"] if u["code"] == "110105"][0]')
SCHOOL=$(get /units | json '[u["id"] for u in d["units"] if u["code"] == "2111000001"][0]')

echo "4. real-name accounts: each system administrator creates its own unit's accounts and the system"
echo "   administrator of the unit directly below (docs/security.md, the access table)"
PROVINCE=$(get /units | json '[u["id"] for u in d["units"] if u["code"] == "110000"][0]')
account bj_info 北京信息员 "$PROVINCE" infoadmin 11010119800101001
account cy_admin 朝阳管理员 "$COUNTY" sysadmin 11010519800101002
login cy_admin 'Initial-pass-1' 'County-pass-2'
account cy_info 朝阳审核员 "$COUNTY" infoadmin 11010519800101003
account sy_admin 实验小学管理员 "$SCHOOL" sysadmin 11010519800101004
login sy_admin 'Initial-pass-1' 'School-admin-2'
account sy_info 实验小学信息员 "$SCHOOL" infoadmin 11010519800101005
account sy_rev 实验小学审核员 "$SCHOOL" infoadmin 11010519800101006

echo "5. the school registers a new teacher (新教师入职) and fills 基本信息"
login sy_info 'Initial-pass-1' 'School-pass-2'
TEACHER=$(post /teachers "{\"school_id\": $SCHOOL, \"basic\": {\"XM\": \"李华\", \"SFZJLXM\": \"1\", \"SFZJH\": \"110105199001011232\"}}" | json 'd["id"]')
put "/teachers/$TEACHER/groups/JBXX" '{"XM": "李华", "XBM": "1", "GJDQM": "156", "SFZJLXM": "1", "SFZJH": "110105199001011232",
 "CSRQ": "1990-01-01", "MZM": "01", "ZZMMM": ["13"], "ZGXLM": "21", "ZGXWCCM": "4", "ZGXWM": "404", "CJGZNY": "2012-09",
 "JBXNY": "2012-09", "JZGLYM": "11", "JZGLBM": "11", "SFZB": "1", "QDHTQKM": "1", "SFQRZSFLZYBY": "1",
 "SFSGTJZYPYPX": "0", "SFYTSJYCYZS": "0", "XXJSYYNLM": "2", "SFSMFSFS": "0", "SFCJJCFWXM": "0", "SFTJJS": "0",
 "SFXJGGJS": "0", "SFXLJKJYJS": "0"}' > /dev/null

echo "6. submit (completeness check); the school's review by another account (谁填报谁负责); county review"
post "/teachers/$TEACHER/submit" '{}' | json 'd["status"]'
login sy_rev 'Initial-pass-1' 'School-rev-2'
post "/teachers/$TEACHER/review" '{"decision": "approve"}' | json 'd["status"]'
login cy_info 'Initial-pass-1' 'County-info-2'
post "/teachers/$TEACHER/review" '{"decision": "approve", "reason": "核对无误"}' | json 'd["status"]'

echo "7. the file is effective, and its core indicators wait in the outbox for the next sync round"
get "/teachers/$TEACHER" | json 'd["teacher_number"] + " " + d["status"]'
login bj_info 'Initial-pass-1' 'Province-info-2'
get /outbox | json 'str(len(d["entries"])) + " outbox entry, version " + str(d["entries"][0]["version"])'
echo "walk-through complete"
